"""Configuration, read from the environment in this one place.

Every setting has a default that runs the service locally: SQLite under ``var/`` and, when
no ``GHL_BASE_URL`` is configured, the sandbox GHL.
"""

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ghl.enrichment import DEFAULT_APP_URL

REAL_GHL_BASE_URL = "https://services.leadconnectorhq.com"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8100"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    ghl_base_url: str = REAL_GHL_BASE_URL
    using_sandbox: bool = False
    # GHL's web app, for links to records in items; agencies white-label it (their own domain).
    ghl_app_url: str = DEFAULT_APP_URL
    database_path: str = str(PROJECT_ROOT / "var" / "ghl-zapier.sqlite3")
    # A postgresql:// URL puts all shared state in PostgreSQL (several hosts) instead of the
    # SQLite file; it holds a password, so it is never logged or shown.
    database_url: str = field(default="", repr=False)
    # PostgreSQL connections per process (a gunicorn worker or a hook worker).
    database_pool_size: int = 8
    connector_key: str = ""
    # The https URL Zapier reaches this service at (behind a TLS proxy the request's own host is not it).
    public_url: str = ""
    secret_key: str = ""
    port: int = 8000
    log_level: str = "INFO"
    # The largest request body a client may send (bytes); larger ones answer 413 before parsing.
    max_body_bytes: int = 1024 * 1024
    # GHL client: connect/read timeouts and a budget that ends well inside Zapier's 30 s.
    ghl_connect_timeout: float = 3.05
    ghl_read_timeout: float = 10.0
    ghl_max_tries: int = 4
    ghl_max_seconds: float = 20.0
    # GHL allows about 100 requests per 10 s per location; stay under it (0 turns this off).
    ghl_burst_max: int = 95
    ghl_burst_window_seconds: float = 10.0
    # Identical reads share one GHL request while in flight, and for this many seconds after.
    poll_share_seconds: float = 0.0
    # Polling triggers.
    new_items_per_poll: int = 100
    redelivery_minutes: int = 60
    redelivery_limit: int = 100
    retention_days: int = 30
    catch_up_pages: int = 10
    sample_items: int = 100
    # REST hooks.
    hook_poll_seconds: int = 60
    hook_target_hosts: tuple = ("hooks.zapier.com",)
    hook_allow_http: bool = False
    # The hook worker: how often it looks for due subscriptions, how long a lease on one lasts
    # (a crashed worker's subscriptions wait this long), and a delivery's read timeout.
    hook_tick_seconds: float = 1.0
    hook_lease_seconds: int = 60
    hook_delivery_timeout: float = 10.0
    # How many REST-hook subscriptions one credential (a token, or an OAuth connection) may hold.
    hook_max_per_credential: int = 200
    # Uploads: the file URLs callers hand (how Zapier hands files), fetched by ghl.file_fetch.
    # The largest file, and the time one download may take in all (counted in the GHL call's budget).
    file_fetch_max_bytes: int = 25 * 1024 * 1024
    file_fetch_connect_timeout: float = 3.05
    file_fetch_total_seconds: float = 8.0
    # Local development and tests only: also fetch from 127.0.0.1, localhost and ::1, over http too.
    file_fetch_allow_loopback: bool = False

    def with_overrides(self, overrides):
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in (overrides or {}).items() if k in known})


def _bool(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _int(environ, name, default):
    value = environ.get(name, "").strip()
    return int(value) if value else default


def _float(environ, name, default):
    value = environ.get(name, "").strip()
    return float(value) if value else default


def _app_url(environ):
    value = environ.get("GHL_APP_URL", "").strip().rstrip("/") or DEFAULT_APP_URL
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise ValueError("GHL_APP_URL must be the https:// address of GHL's web app (or the agency's "
                         f"white-labelled domain), such as {DEFAULT_APP_URL}")
    return value


def _database_url(environ):
    value = environ.get("DATABASE_URL", "").strip()
    if value and not value.startswith(("postgresql://", "postgres://")):
        # Not quoted back: a malformed URL may still hold a password.
        raise ValueError("DATABASE_URL must be a postgresql:// URL "
                         "(postgresql://user:password@host:5432/dbname); leave it unset for SQLite at DATABASE_PATH")
    return value


def load_settings(environ=None):
    """Settings from ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    base_url = environ.get("GHL_BASE_URL", "").strip()
    sandbox_url = environ.get("SANDBOX_URL", DEFAULT_SANDBOX_URL).strip()
    defaults = Settings()
    return Settings(
        ghl_base_url=(base_url or sandbox_url).rstrip("/"),
        using_sandbox=not base_url,
        ghl_app_url=_app_url(environ),
        database_path=environ.get("DATABASE_PATH", "").strip() or defaults.database_path,
        database_url=_database_url(environ),
        database_pool_size=max(1, _int(environ, "DATABASE_POOL_SIZE", defaults.database_pool_size)),
        connector_key=environ.get("CONNECTOR_KEY", "").strip(),
        public_url=environ.get("PUBLIC_URL", "").strip().rstrip("/"),
        secret_key=environ.get("SECRET_KEY", "").strip(),
        port=_int(environ, "PORT", defaults.port),
        log_level=(environ.get("LOG_LEVEL", "").strip() or defaults.log_level).upper(),
        max_body_bytes=max(1024, _int(environ, "MAX_BODY_BYTES", defaults.max_body_bytes)),
        ghl_max_seconds=_float(environ, "GHL_MAX_SECONDS", defaults.ghl_max_seconds),
        ghl_burst_max=_int(environ, "GHL_BURST_MAX", defaults.ghl_burst_max),
        ghl_burst_window_seconds=_float(environ, "GHL_BURST_WINDOW_SECONDS", defaults.ghl_burst_window_seconds),
        poll_share_seconds=_float(environ, "POLL_SHARE_SECONDS", defaults.poll_share_seconds),
        new_items_per_poll=_int(environ, "NEW_ITEMS_PER_POLL", defaults.new_items_per_poll),
        redelivery_minutes=_int(environ, "REDELIVERY_MINUTES", defaults.redelivery_minutes),
        retention_days=_int(environ, "RETENTION_DAYS", defaults.retention_days),
        hook_poll_seconds=max(5, _int(environ, "HOOK_POLL_SECONDS", defaults.hook_poll_seconds)),
        hook_target_hosts=tuple(
            h.strip().lower() for h in environ.get("HOOK_TARGET_HOSTS", "hooks.zapier.com").split(",") if h.strip()),
        hook_allow_http=_bool(environ.get("HOOK_ALLOW_HTTP", "")),
        hook_tick_seconds=max(0.1, _float(environ, "HOOK_TICK_SECONDS", defaults.hook_tick_seconds)),
        hook_lease_seconds=max(5, _int(environ, "HOOK_LEASE_SECONDS", defaults.hook_lease_seconds)),
        hook_delivery_timeout=max(1.0, _float(environ, "HOOK_DELIVERY_TIMEOUT", defaults.hook_delivery_timeout)),
        hook_max_per_credential=max(1, _int(environ, "HOOK_MAX_PER_CREDENTIAL", defaults.hook_max_per_credential)),
        file_fetch_max_bytes=max(1024, _int(environ, "FILE_FETCH_MAX_BYTES", defaults.file_fetch_max_bytes)),
        file_fetch_total_seconds=max(1.0, _float(environ, "FILE_FETCH_TOTAL_SECONDS",
                                                 defaults.file_fetch_total_seconds)),
        file_fetch_allow_loopback=_bool(environ.get("FILE_FETCH_ALLOW_LOOPBACK", "")),
    )
