"""The service's secret key: ``SECRET_KEY``, or a development key file beside the database.

The key names token holders without revealing tokens (an HMAC) and, for REST hooks,
encrypts stored tokens. Deployments set ``SECRET_KEY``; ``make run`` and tests use the key
file, created once with owner-only permissions (0600, in a folder created 0700).
"""

import os
import secrets
from pathlib import Path

DEV_KEY_FILE = "dev-secret.key"


def dev_key_path(settings):
    return Path(settings.database_path).resolve().parent / DEV_KEY_FILE


def load_secret_key(settings, create=True):
    """``SECRET_KEY``, else the development key file (created when ``create``); "" when neither."""
    if settings.secret_key:
        return settings.secret_key
    path = dev_key_path(settings)
    if path.exists():
        return path.read_text().strip()
    if not create:
        return ""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32))
    try:
        # link() publishes the complete file atomically, and fails if another process won.
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text().strip()
