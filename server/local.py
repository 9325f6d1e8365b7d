"""``make run``: the service as the Procfile runs it, plus the sandbox GHL when no GHL is configured.

Starts every Procfile process (gunicorn for ``web``; the REST-hook ``worker`` when declared)
and, without ``GHL_BASE_URL``, the sandbox on ``SANDBOX_URL``'s port. Ctrl-C stops them all.
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from server.config import PROJECT_ROOT, load_settings
from server.secrets import dev_key_path, load_secret_key

SANDBOX_TOKEN = "sandbox-token"


SHELL_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}|\$\{(\w+)\}|\$(\w+)")


def expand_command(command, env):
    """``$NAME``, ``${NAME}`` and ``${NAME:-default}`` filled from ``env``, as a platform's shell would."""
    def value(match):
        name = match.group(1) or match.group(3) or match.group(4)
        default = match.group(2) if match.group(1) else ""
        return env.get(name) or default
    return SHELL_DEFAULT.sub(value, command)


def procfile_commands(path=PROJECT_ROOT / "Procfile"):
    commands = {}
    for line in Path(path).read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def main():
    settings = load_settings()
    env = dict(os.environ)
    env.setdefault("PORT", str(settings.port))
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    processes = []
    if settings.using_sandbox:
        sandbox = urlsplit(settings.ghl_base_url)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--host", sandbox.hostname, "--port", str(sandbox.port)],
            cwd=PROJECT_ROOT, env=env))
        env.setdefault("HOOK_TARGET_HOSTS", "127.0.0.1,localhost")
        env.setdefault("HOOK_ALLOW_HTTP", "1")
        print(f"No GHL_BASE_URL is set: using the sandbox GHL at {settings.ghl_base_url} "
              f"(token: {SANDBOX_TOKEN}). To use real GHL, run "
              "GHL_BASE_URL=https://services.leadconnectorhq.com make run", flush=True)
    if not settings.secret_key:
        # Exported so the web and worker processes share one key: hooks refuse to run without one.
        env["SECRET_KEY"] = load_secret_key(settings)
        print(f"No SECRET_KEY is set: using the development key in {dev_key_path(settings)}", flush=True)
    for name, command in procfile_commands().items():
        command = expand_command(command, {"WEB_CONCURRENCY": "2", **env})
        print(f"starting {name}: {command}", flush=True)
        processes.append(subprocess.Popen(shlex.split(command), cwd=PROJECT_ROOT, env=env))
    print(f"Service on http://127.0.0.1:{env['PORT']}/ (catalog page), /healthz, /catalog", flush=True)

    def stop(*_):
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.time() + 10
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        for process in processes:
            if process.poll() is not None:
                print(f"a process exited with {process.returncode}; stopping", flush=True)
                stop()
        time.sleep(0.5)


if __name__ == "__main__":
    main()
