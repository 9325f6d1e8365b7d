"""What the benchmark and the drill run: the sandbox GHL and the service under gunicorn.

``SandboxProcess``: the sandbox (``bench.sandbox_server``) on a free loopback port, in its own
process, with helpers for its ``/_sandbox`` controls. ``Service``: the service exactly as the
``Procfile``'s ``web:`` line runs it (gunicorn on the app factory), bound to loopback, with
optional overrides (workers, connections per worker, or extra gunicorn arguments such as another
worker class) for comparing configurations; it knows its worker pids,
their resident memory, and can SIGKILL one (the master starts a replacement). ``HookWorkerProcess``:
the ``Procfile``'s ``worker:`` line (the REST-hook worker) in its own process group. Both take a
``cwd`` and a ``procfile``, so they can run another checkout of the service (an older commit's
worktree) with this interpreter, and a ``database_url`` (``DATABASE_URL``: a PostgreSQL store
instead of the SQLite file at ``database_path``). ``Host``: one host of a deployment, the
Procfile's ``web:`` group and its ``worker:`` on a port of their own; several hosts given one
store (one SQLite file, or one PostgreSQL database) share all state, as machines behind a load
balancer would. ``Store``: the store a run uses (``sqlite`` or ``postgres``; for the latter a
throwaway server, ``bench.postgres_server``, and a fresh database per ``Store.fresh()``).
``Receiver``: hooks.zapier.com's stand-in, in this process, that
records every batch the hook worker POSTs and answers as told (the bench and the tests use it).
Everything binds 127.0.0.1 and every process started here is stopped by the object that
started it.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from server.local import expand_command

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "sandbox-token"
LOCATION = "sandbox-location"
GHL_VERSION = "2021-07-28"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url, process=None, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


def _stop_process_group(process, timeout=10):
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _open_log(log_path):
    return open(log_path, "ab") if log_path else subprocess.DEVNULL


class SandboxProcess:
    """The sandbox GHL in its own process: ``url``, ``start()``, ``stop()`` and the controls."""

    def __init__(self, latency_ms=0, burst_limit=100, daily_limit=None, tokens=0, server="gunicorn",
                 threads=160, log_path=None, audit=False):
        self.audit = audit  # serve bench.audited_sandbox: rate_audit() answers
        self.latency_ms = latency_ms
        self.burst_limit = burst_limit
        self.daily_limit = daily_limit
        self.tokens = tokens
        self.server = server
        self.threads = threads
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.http = requests.Session()

    def start(self):
        module = "bench.audited_sandbox" if self.audit else "bench.sandbox_server"
        command = [sys.executable, "-m", module, "--port", str(self.port),
                   "--latency-ms", str(self.latency_ms), "--burst-limit", str(self.burst_limit),
                   "--tokens", str(self.tokens), "--server", self.server, "--threads", str(self.threads)]
        if self.daily_limit is not None:
            command += ["--daily-limit", str(self.daily_limit)]
        log = _open_log(self.log_path)
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        wait_until_up(self.url + "/_sandbox/", self.process)
        return self

    def stop(self):
        _stop_process_group(self.process)
        self.http.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- controls ---------------------------------------------------------------------------
    def control(self, method, path, payload=None, timeout=30):
        response = self.http.request(method, f"{self.url}/_sandbox{path}", json=payload, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def reset(self):
        return self.control("POST", "/reset")

    def set_latency(self, ms):
        return self.control("POST", "/latency", {"ms": ms})

    def add_faults(self, faults):
        return self.control("POST", "/faults", faults)

    def clear_faults(self):
        return self.control("DELETE", "/faults")

    def pending_faults(self):
        return self.control("GET", "/faults")["faults"]

    def add_records(self, path, records, location_id=LOCATION):
        """Create ``records`` in the collection the list ``path`` reads; returns their ids."""
        payload = {"path": path, "records": records, "locationId": location_id}
        return self.control("POST", "/records", payload)["ids"]

    def records(self, path):
        response = self.http.get(f"{self.url}/_sandbox/records", params={"path": path}, timeout=30)
        response.raise_for_status()
        return response.json()["records"]

    def requests_log(self):
        return self.control("GET", "/requests")["requests"]

    def clear_requests(self):
        return self.control("DELETE", "/requests")

    def rate_audit(self, clear=False):
        """Per (token, location): GHL requests the limiter counted, refused (429), and the most in
        any window of its length (``bench.audited_sandbox``; needs ``audit=True``)."""
        return self.control("DELETE" if clear else "GET", "/rate-audit")


def procfile_web_command(port, procfile=ROOT / "Procfile", workers=None, connections=None):
    """The Procfile's ``web:`` command as an argv list, bound to 127.0.0.1:``port``.

    ``$PORT``, ``${HOST:-…}``, ``${WEB_CONCURRENCY:-N}`` and ``${WEB_CONNECTIONS:-N}`` are filled
    as the platform would; ``gunicorn`` is run with this interpreter (``python -m gunicorn``) so
    the venv's packages are the ones used.
    """
    line = next((text for text in Path(procfile).read_text().splitlines() if text.startswith("web:")), None)
    if line is None:
        raise RuntimeError("the Procfile has no web: line")
    env = dict(os.environ)
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if connections:
        env["WEB_CONNECTIONS"] = str(connections)
    env["PORT"] = str(port)
    env["HOST"] = "127.0.0.1"
    command = expand_command(line.partition(":")[2].strip(), env)
    argv = shlex.split(command)
    argv = [arg.replace("0.0.0.0:", "127.0.0.1:") for arg in argv]
    if argv[0] == "gunicorn":
        argv = [sys.executable, "-m", "gunicorn"] + argv[1:]
    return argv


def rss_kb(pid):
    """Resident memory of ``pid`` in KiB (``VmRSS`` of /proc/<pid>/status); None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def children_of(pid):
    """Pids whose parent is ``pid``."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except (FileNotFoundError, PermissionError):
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == pid:
                        found.append(int(entry))
                except (FileNotFoundError, ProcessLookupError, IndexError):
                    pass
        return found


class Service:
    """The service under gunicorn as the Procfile runs it, on a loopback port. ``extra_args`` are
    appended, so a later option overrides the Procfile's (``--worker-class gthread --threads 16``
    runs the threaded workers the Procfile used before issue 10); ``procfile`` names another file
    to take the ``web:`` line from. ``database_url`` (a ``postgresql://`` URL) becomes its
    ``DATABASE_URL``: the store is that database, not the SQLite file at ``database_path``;
    without one, a ``DATABASE_URL`` of this process's environment is not passed on."""

    def __init__(self, ghl_url, database_path, workers=None, extra_args=(), env=None, log_path=None,
                 label="procfile", connections=None, procfile=ROOT / "Procfile", cwd=ROOT, database_url=None):
        self.port = free_port()
        self.cwd = Path(cwd)
        self.url = f"http://127.0.0.1:{self.port}"
        self.label = label
        self.workers = workers
        self.connections = connections
        self.procfile = procfile
        self.extra_args = list(extra_args)
        self.log_path = log_path
        self.env = {**os.environ, "GHL_BASE_URL": ghl_url, "DATABASE_PATH": str(database_path),
                    "SECRET_KEY": os.environ.get("BENCH_SECRET_KEY", "bench-secret"), "LOG_LEVEL": "WARNING",
                    **(env or {})}
        self.env.pop("WEB_CONCURRENCY", None) if workers else None
        set_database_url(self.env, database_url)
        self.process = None

    @property
    def argv(self):
        return procfile_web_command(self.port, self.procfile, workers=self.workers,
                                    connections=self.connections) + self.extra_args

    def start(self, timeout=60):
        log = _open_log(self.log_path)
        self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=log,
                                        start_new_session=True)
        wait_until_up(self.url + "/healthz", self.process, timeout)
        self.wait_for_workers(timeout)
        return self

    def stop(self):
        _stop_process_group(self.process)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def expected_workers(self):
        argv = self.argv
        count = None
        for n, arg in enumerate(argv):
            if arg in ("--workers", "-w") and n + 1 < len(argv):
                count = int(argv[n + 1])
            elif arg.startswith("--workers="):
                count = int(arg.split("=", 1)[1])
        return count or 1

    def worker_pids(self):
        if self.process is None or self.process.poll() is not None:
            return []
        return sorted(children_of(self.process.pid))

    def wait_for_workers(self, timeout=60):
        """Until the master has its full count of workers (after a start or a kill)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.worker_pids()) >= self.expected_workers:
                return self.worker_pids()
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not have {self.expected_workers} workers within {timeout}s")

    def worker_rss_kb(self):
        return {pid: rss_kb(pid) for pid in self.worker_pids()}

    def kill_worker(self, pid):
        """SIGKILL one worker (gunicorn's master notices and starts a new one)."""
        if pid not in self.worker_pids():
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True


def set_database_url(env, database_url):
    """``env`` selecting its store: ``DATABASE_URL`` = ``database_url`` when one is given, else
    none (SQLite at ``DATABASE_PATH``)."""
    if database_url:
        env["DATABASE_URL"] = str(database_url)
    else:
        env.pop("DATABASE_URL", None)
    return env


class Host:
    """One host of a deployment: the Procfile's ``web:`` group (``Service``) and its ``worker:``
    (``HookWorkerProcess``), each in a process group of its own, the web group on its own port.
    Hosts given the same ``database_path`` (one machine) or ``database_url`` (PostgreSQL) share
    every piece of state: dedupe, hook subscriptions and their leases, the rate budget, shared
    reads. ``name`` labels its logs (``<log_dir>/<name>-gunicorn.log``, ``-hooks-worker.log``).
    ``hook_worker=False`` runs the web group alone. Extra keyword arguments go to ``Service``."""

    def __init__(self, name, ghl_url, database_path, database_url=None, env=None, log_dir=None,
                 hook_worker=True, **service_kwargs):
        self.name = name
        log_dir = Path(log_dir) if log_dir else None
        self.service = Service(ghl_url, database_path, env=env, database_url=database_url,
                               log_path=log_dir / f"{name}-gunicorn.log" if log_dir else None,
                               label=service_kwargs.pop("label", name), **service_kwargs)
        self.worker = None
        if hook_worker:
            self.worker = HookWorkerProcess.for_service(
                self.service, log_dir / f"{name}-hooks-worker.log" if log_dir else None)
            if self.worker is None:
                raise RuntimeError(f"{self.service.procfile} has no worker: line")

    @property
    def url(self):
        return self.service.url

    def start(self, timeout=60):
        self.service.start(timeout)
        if self.worker:
            self.worker.start()
        return self

    def stop(self):
        if self.worker:
            self.worker.stop()
        self.service.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Store:
    """The store of a run: ``kind`` ``sqlite`` (files in ``directory``) or ``postgres`` (a
    throwaway server of ``bench.postgres_server``, started here unless ``server`` is given,
    and stopped by ``stop()`` only when started here). ``fresh(name)`` gives what a
    ``Service``/``Host`` takes: ``(database_path, database_url)``, a new empty store each call
    (a new SQLite file; a new database by ``CREATE DATABASE``); a service on PostgreSQL still
    gets a ``database_path`` (unused). ``server_pid()``: the postmaster, for its CPU."""

    KINDS = ("sqlite", "postgres")

    def __init__(self, kind, directory, server=None):
        if kind not in self.KINDS:
            raise ValueError(f"unknown store {kind!r} (sqlite, postgres)")
        self.kind = kind
        self.directory = Path(directory)
        self.server = server
        self._own_server = False

    def start(self):
        if self.kind == "postgres" and self.server is None:
            from bench.postgres_server import PostgresServer
            self.server = PostgresServer().start()
            self._own_server = True
        return self

    def stop(self):
        if self._own_server and self.server is not None:
            self.server.stop()
            self.server = None
            self._own_server = False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def fresh(self, name):
        path = self.directory / f"{name}.sqlite3"
        if self.kind == "sqlite":
            return path, None
        prefix = "".join(c if c.isalnum() else "_" for c in name.lower())[:30] or "db"
        return path, self.server.fresh_database(prefix)

    def server_pid(self):
        """The PostgreSQL postmaster's pid (its backends are its children); None for SQLite."""
        if self.kind != "postgres" or self.server is None or self.server.root is None:
            return None
        try:
            return int((self.server.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def server_cpu_seconds(self):
        pid = self.server_pid()
        return tree_cpu_seconds(pid) if pid else 0.0


def procfile_command(name, procfile=ROOT / "Procfile"):
    """The command of the Procfile's ``name:`` line; None when it has none."""
    for line in Path(procfile).read_text().splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == name:
            return command.strip()
    return None


class HookWorkerProcess:
    """The Procfile's ``worker:`` command (``python -m triggers.hooks_worker``) in its own process
    group, run with this interpreter from ``cwd``; ``kill9()`` counts its kills in ``kills``.
    ``database_url`` sets its ``DATABASE_URL`` ('' removes one from ``env``; None keeps ``env``'s)."""

    def __init__(self, command, env, log_path=None, cwd=ROOT, database_url=None):
        self.argv = shlex.split(command)
        if self.argv[0] in ("python", "python3"):
            self.argv[0] = sys.executable
        self.env = env if database_url is None else set_database_url(dict(env), database_url)
        self.log_path = log_path
        self.cwd = Path(cwd)
        self.process = None
        self.kills = 0

    @classmethod
    def for_service(cls, service, log_path=None):
        """The ``worker:`` line of ``service``'s Procfile, with its environment (store included)
        and directory; None when that Procfile has no ``worker:`` line."""
        command = procfile_command("worker", service.procfile)
        return None if command is None else cls(command, dict(service.env), log_path, service.cwd)

    @property
    def pid(self):
        return self.process.pid if self.process and self.process.poll() is None else None

    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        log = _open_log(self.log_path)
        try:
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=log,
                                            start_new_session=True)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        return self

    def kill9(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclass
class Answer:
    """How ``Receiver`` answers one POST: ``status`` with ``headers`` and ``body`` after ``delay``
    seconds; ``drop`` closes the connection without any answer."""
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    body: bytes = b"{}"


@dataclass
class Batch:
    """One POST ``Receiver`` got: its ``path``, its JSON ``body`` (None when it was not JSON), when it
    was read in full (``received``: ``time.monotonic()``; ``at``: ``time.time()``), how it was
    answered (``answer``), when the answer started (``replying``, after any delay or hold) and when it
    was written (``answered``); both None until then, ``answered`` stays None for a drop."""
    path: str
    body: object
    received: float
    at: float
    answer: Answer
    replying: float = None
    answered: float = None

    @property
    def items(self):
        return self.body if isinstance(self.body, list) else []

    @property
    def accepted(self):
        """Answered with a 2xx (so far: the answer is being written or was)."""
        return self.replying is not None and not self.answer.drop and 200 <= self.answer.status < 300


class Receiver:
    """hooks.zapier.com's stand-in on a loopback port: records every JSON body POSTed to it, per
    path, as a ``Batch`` (in arrival order), then answers.

    The answer to a POST is, first to last: the next of ``script(path, answers)`` for its path (an
    ``Answer`` or a ``(status, headers)`` pair); else what ``answer(path, body)`` returns (a
    callable given to the constructor, called under ``lock``; None means 200); else 200. ``hold(path)``
    keeps the next POST to that path received but unanswered until the returned event is set (10 s
    at most); ``delay`` seconds are added to every answer. ``keep_alive`` answers in HTTP/1.1 (the
    connection stays open, as hooks.zapier.com's would); without it each connection closes after
    its answer, so ``stop()`` takes the receiver down for every client (``start()`` brings it back
    up on the same port)."""

    def __init__(self, answer=None, keep_alive=False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.answer = answer
        self.keep_alive = keep_alive
        self.delay = 0.0
        self.lock = threading.Lock()
        self._batches = []
        self._by_path = {}
        self._scripts = {}
        self._holds = {}
        self.server = None

    def _receive(self, path, raw):
        received, at = time.monotonic(), time.time()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self.lock:
            script = self._scripts.get(path)
            if script:
                answer = script.pop(0)
            else:
                answer = self.answer(path, body) if self.answer else None
            if answer is None:
                answer = Answer()
            elif not isinstance(answer, Answer):
                status, headers = answer
                answer = Answer(status, dict(headers))
            batch = Batch(path, body, received, at, answer)
            self._batches.append(batch)
            self._by_path.setdefault(path, []).append(batch)
            held = self._holds.pop(path, None)
        return batch, held

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keep_alive else "HTTP/1.0"

            def do_POST(self):
                batch, held = receiver._receive(self.path, self.rfile.read(int(self.headers.get("Content-Length", 0))))
                answer = batch.answer
                if held is not None:
                    held.wait(10)
                if answer.delay or receiver.delay:
                    time.sleep(answer.delay + receiver.delay)
                batch.replying = time.monotonic()
                if answer.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                    self.wfile.flush()
                finally:
                    batch.answered = time.monotonic()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def script(self, path, answers):
        """The next answers to POSTs to ``path``, in order: ``Answer``s or ``(status, headers)``."""
        with self.lock:
            self._scripts[path] = list(answers)

    def hold(self, path):
        """Keep the next POST to ``path`` unanswered until the returned event is set."""
        with self.lock:
            self._holds[path] = threading.Event()
            return self._holds[path]

    def batches(self, path=None):
        """The batches received (to ``path``, or to any), in arrival order."""
        with self.lock:
            return list(self._batches if path is None else self._by_path.get(path, ()))

    def bodies(self, path=None):
        return [batch.body for batch in self.batches(path)]

    def items(self, path=None):
        """Every item of every batch received (to ``path``), answered or not, in arrival order."""
        return [item for batch in self.batches(path) for item in batch.items]

    def requests_to(self, path):
        with self.lock:
            return len(self._by_path.get(path, ()))


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU time of ``pid`` (all its threads) in seconds; 0.0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # After the command: state(0) ppid(1) ... utime(11) stime(12)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid):
    """CPU seconds of ``pid`` and its children (a gunicorn master and its workers)."""
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in children_of(pid))
