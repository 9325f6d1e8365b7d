"""``make run`` (``python -m server.local``) as a newcomer meets it: taken ports are named before
anything starts, the service listens on loopback only, the hook rule is printed, a process that
dies takes ``make run`` down with an error, and Ctrl-C leaves nothing running."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from bench.harness import free_port, wait_until_up
from tests.conftest import ROOT


def run_env(tmp_path, port, sandbox_port, **extra):
    env = {**os.environ, "PORT": str(port), "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
           "DATABASE_PATH": str(tmp_path / "run.sqlite3"), "SECRET_KEY": "test-secret"}
    for name in ("GHL_BASE_URL", "HOST", "HOOK_TARGET_HOSTS", "HOOK_ALLOW_HTTP", "GUNICORN_CMD_ARGS"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_once(env, timeout=20):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "server.local"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return done, done.stdout + done.stderr, time.monotonic() - started


def listening(port, host="127.0.0.1"):
    """A socket that holds ``host:port`` as a server would; close it when done."""
    sock = socket.socket()
    sock.bind((host, port))
    sock.listen()
    return sock


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


def descendants(pid):
    """The pids of every process below ``pid``, read from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    stat = handle.read()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def processes_of(tmp_path):
    """The live processes started with this test's DATABASE_PATH in their environment."""
    marker = f"DATABASE_PATH={tmp_path / 'run.sqlite3'}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if marker in handle.read().split(b"\0") and alive(int(entry)):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def alive(pid):
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def other_local_address():
    """An IPv4 address of this machine other than loopback, or None when it has only loopback."""
    candidates = set()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.255", 9))  # no packet is sent: this only picks the outgoing interface
            candidates.add(probe.getsockname()[0])
    except OSError:
        pass
    try:
        candidates.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return next((a for a in sorted(candidates) if not a.startswith("127.") and a != "0.0.0.0"), None)


def test_a_taken_service_port_stops_make_run_before_it_starts_anything_and_names_port(tmp_path):
    port, sandbox_port = free_port(), free_port()
    with listening(port):
        done, output, seconds = run_once(run_env(tmp_path, port, sandbox_port))
    assert done.returncode != 0, output
    assert seconds < 10
    assert f"port {port}" in output and "PORT=" in output and "SANDBOX_URL" not in output
    assert "starting" not in output and refused("127.0.0.1", sandbox_port)


def test_a_taken_sandbox_port_stops_make_run_and_names_sandbox_url(tmp_path):
    port, sandbox_port = free_port(), free_port()
    with listening(sandbox_port):
        done, output, seconds = run_once(run_env(tmp_path, port, sandbox_port))
    assert done.returncode != 0, output
    assert seconds < 10
    assert f"port {sandbox_port}" in output and "SANDBOX_URL=" in output and "PORT=" not in output
    assert "starting" not in output and refused("127.0.0.1", port)


def test_a_process_that_exits_early_fails_make_run_and_stops_the_others(tmp_path):
    port, sandbox_port = free_port(), free_port()
    # gunicorn refuses an unknown option and exits 2 at once; the sandbox and the worker have started.
    try:
        done, output, _ = run_once(run_env(tmp_path, port, sandbox_port, GUNICORN_CMD_ARGS="--no-such-option"))
        assert done.returncode == 2, output
        assert "web exited with code 2" in output
        assert not processes_of(tmp_path), "the sandbox or the hook worker was left running"
    finally:
        for pid in processes_of(tmp_path):
            os.kill(pid, signal.SIGKILL)


def test_make_run_listens_on_loopback_states_its_rules_and_stops_cleanly_on_ctrl_c(tmp_path):
    port, sandbox_port = free_port(), free_port()
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "server.local"], cwd=ROOT,
                                   env=run_env(tmp_path, port, sandbox_port), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    children = []
    try:
        try:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        except RuntimeError as error:
            pytest.fail(f"{error}\n{log_path.read_text()[-3000:]}")
        assert not refused("127.0.0.1", sandbox_port)
        output = log_path.read_text()
        assert "Hook targets:" in output and "only on 127.0.0.1, localhost" in output
        assert "HOOK_TARGET_HOSTS=" in output
        assert f"listens on 127.0.0.1:{port} only" in output and "HOST=0.0.0.0" in output
        other = other_local_address()
        if other:  # a machine with only loopback has nothing to check here
            assert refused(other, port), f"the service answers on {other}:{port}, not only on loopback"

        children = descendants(process.pid)
        assert len(children) >= 4  # the sandbox, gunicorn and its workers, the hook worker
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if alive(pid)], "make run left processes behind"
        assert not processes_of(tmp_path)
        assert refused("127.0.0.1", port) and refused("127.0.0.1", sandbox_port)
    finally:
        leftovers = set(children) | set(descendants(process.pid)) | set(processes_of(tmp_path))
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in leftovers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("argv, expected", [
    (["gunicorn", "--bind", "127.0.0.1:8000", "app"], ("127.0.0.1", 8000)),
    (["gunicorn", "--bind=0.0.0.0:9000", "app"], ("0.0.0.0", 9000)),
    (["gunicorn", "-b", "[::1]:8001", "app"], ("::1", 8001)),
    (["python", "-m", "worker"], None),
])
def test_the_port_check_reads_the_address_the_procfile_command_binds(argv, expected):
    from server.local import bind_address
    assert bind_address(argv) == expected
