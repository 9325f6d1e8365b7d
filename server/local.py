"""``make run``: the service as the Procfile runs it, plus the sandbox GHL when no GHL is configured.

Starts every Procfile process (gunicorn for ``web``; the REST-hook ``worker`` when declared)
and, without ``GHL_BASE_URL``, the sandbox on ``SANDBOX_URL``'s port. The service listens on
loopback only unless ``HOST`` is set. Before starting anything it checks that the ports are
free. Ctrl-C stops every process; if one of them exits on its own, the others are stopped
too and ``make run`` fails.
"""

import errno
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from server.config import PROJECT_ROOT, load_settings
from server.secrets import dev_key_path, load_secret_key

SANDBOX_TOKEN = "sandbox-token"
# Where ``make run`` binds the service unless HOST says otherwise (the Procfile's own default,
# used by platforms such as Heroku, is 0.0.0.0).
LOCAL_HOST = "127.0.0.1"
# How long stopped processes get to exit after SIGTERM before they are killed.
STOP_SECONDS = 10


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


def bind_address(argv):
    """(host, port) of gunicorn's ``--bind``/``-b`` in ``argv``, or None when it has none."""
    for i, arg in enumerate(argv):
        value = None
        if arg in ("--bind", "-b") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--bind="):
            value = arg.partition("=")[2]
        if value:
            host, _, port = value.rpartition(":")
            if port.isdigit():
                return host.strip("[]") or "0.0.0.0", int(port)
    return None


def bind_error(host, port):
    """Why a server could not listen on ``host:port`` now (tried the way gunicorn binds), or None."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return error
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            return error
    return None


def port_problem(what, host, port, variable, example, address_variables):
    """A message for when ``what`` cannot listen on ``host:port``, naming the variables that move it."""
    error = bind_error(host, port)
    if error is None:
        return None
    if getattr(error, "errno", None) == errno.EADDRINUSE:
        return (f"The {what} cannot start: port {port} on {host} is already in use. Stop what uses it, "
                f"or set {variable} to another port, e.g. {example} make run")
    return (f"The {what} cannot start: it cannot listen on {host}:{port} ({error.strerror or error}). "
            f"Set {address_variables} to an address and port this machine can listen on.")


def browsable_host(host):
    """The host to open in a browser for a server bound to ``host``."""
    return LOCAL_HOST if host in ("0.0.0.0", "::", "") else host


def hook_rule(settings):
    """Which target URLs ``POST /hooks`` accepts, and how to change that."""
    hosts = ", ".join(settings.hook_target_hosts) or "(none)"
    how = "http or https, any port" if settings.hook_allow_http else "https, default port only"
    return (f"Hook targets: POST /hooks accepts a target_url only on {hosts} ({how}). "
            "To deliver elsewhere, set HOOK_TARGET_HOSTS to a comma-separated list of hosts, "
            "e.g. HOOK_TARGET_HOSTS=hooks.zapier.com,127.0.0.1 make run")


def main():
    settings = load_settings()
    env = dict(os.environ)
    env.setdefault("PORT", str(settings.port))
    if not env.get("HOST"):
        env["HOST"] = LOCAL_HOST
    if settings.using_sandbox:
        env.setdefault("HOOK_TARGET_HOSTS", "127.0.0.1,localhost")
        env.setdefault("HOOK_ALLOW_HTTP", "1")
        # Uploads may then fetch files from a server on this machine (the sandbox has no internet).
        env.setdefault("FILE_FETCH_ALLOW_LOOPBACK", "1")
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")

    commands = {}  # name -> argv, in Procfile order
    for name, command in procfile_commands().items():
        commands[name] = shlex.split(expand_command(command, {"WEB_CONCURRENCY": "2", **env}))
    web_bind = bind_address(commands.get("web", [])) or (env["HOST"], int(env["PORT"]))

    # Check the ports before starting anything, so that a taken port is a clear error.
    problems = []
    sandbox = urlsplit(settings.ghl_base_url) if settings.using_sandbox else None
    if sandbox:
        sandbox_port = sandbox.port or (443 if sandbox.scheme == "https" else 80)
        if sandbox_port == web_bind[1]:
            problems.append(f"The service and the sandbox GHL would both use port {sandbox_port}. "
                            "Set PORT or SANDBOX_URL to another port.")
        else:
            problems.append(port_problem("sandbox GHL", sandbox.hostname, sandbox_port, "SANDBOX_URL",
                                         f"SANDBOX_URL=http://{sandbox.hostname}:{sandbox_port + 1}",
                                         "SANDBOX_URL"))
    if "web" in commands:
        problems.append(port_problem("service", *web_bind, "PORT", f"PORT={web_bind[1] + 1}", "HOST and PORT"))
    problems = [problem for problem in problems if problem]
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr, flush=True)
        sys.exit(1)

    if settings.using_sandbox:
        print(f"No GHL_BASE_URL is set: using the sandbox GHL at {settings.ghl_base_url} "
              f"(token: {SANDBOX_TOKEN}). To use real GHL, run "
              "GHL_BASE_URL=https://services.leadconnectorhq.com make run", flush=True)
    if not settings.secret_key:
        # Exported so the web and worker processes share one key: hooks refuse to run without one.
        env["SECRET_KEY"] = load_secret_key(settings)
        print(f"No SECRET_KEY is set: using the development key in {dev_key_path(settings)}", flush=True)
    print(hook_rule(load_settings(env)), flush=True)

    processes = []  # (name, Popen); each in its own process group, so that stopping reaches its children
    stopping = []

    def stop(code):
        if stopping:
            return
        stopping.append(code)
        for _, process in processes:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for _, process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, process in processes:
            # Also reaches what a process left behind (gunicorn's workers, for one).
            _signal_group(process, signal.SIGKILL)
            process.wait()
        sys.exit(code)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop(0))  # before anything starts: Ctrl-C never orphans one

    def start(name, argv):
        processes.append((name, subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, start_new_session=True)))

    if sandbox:
        start("sandbox", [sys.executable, "-m", "sandbox", "--host", sandbox.hostname,
                          "--port", str(sandbox_port)])
    for name, argv in commands.items():
        print(f"starting {name}: {shlex.join(argv)}", flush=True)
        start(name, argv)
    host, port = web_bind
    if host in ("127.0.0.1", "localhost", "::1"):
        print(f"The service listens on {host}:{port} only: other machines cannot reach it. "
              "To accept connections from elsewhere, run HOST=0.0.0.0 make run", flush=True)
    elif host in ("0.0.0.0", "::"):
        print(f"The service listens on every interface ({host}:{port}): other machines can reach it.",
              flush=True)
    else:
        print(f"The service listens on {host}:{port}.", flush=True)
    print(f"Service on http://{browsable_host(host)}:{port}/ (catalog page), /healthz, /catalog", flush=True)

    while True:
        for name, process in processes:
            if process.poll() is not None:
                print(f"{name} exited with code {process.returncode}; stopping the others", file=sys.stderr,
                      flush=True)
                stop(process.returncode if process.returncode > 0 else 1)
        time.sleep(0.2)


def _signal_group(process, signum):
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    main()
