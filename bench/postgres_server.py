"""A throwaway PostgreSQL server for the tests and benchmarks: Debian's own binaries, ``initdb``
in a temporary directory, listening on 127.0.0.1 only, stopped and deleted afterwards.

PostgreSQL refuses to run as root, so as root (CI) the directory is handed to the ``postgres``
user Debian's package creates and every command runs through ``runuser``; as anyone else they
run as that user. The server trusts local TCP connections (a test database on loopback, gone
when the run ends); ``dsn`` is what a client connects with.

    with PostgresServer() as server:
        psycopg.connect(server.dsn)
"""

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.harness import free_port

# Debian installs each major version's server binaries here (package postgresql).
BIN_PATTERN = "/usr/lib/postgresql/*/bin"
SERVICE_USER = "postgres"
DATABASE_USER = "ghl"
START_SECONDS = 30


def bin_dir():
    """The newest installed server's binaries (``PG_BIN_DIR`` overrides); FileNotFoundError when none."""
    if os.environ.get("PG_BIN_DIR"):
        return Path(os.environ["PG_BIN_DIR"])
    found = sorted((Path(p) for p in glob.glob(BIN_PATTERN) if (Path(p) / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise FileNotFoundError("no PostgreSQL server binaries in /usr/lib/postgresql: "
                                "install Debian's postgresql package (make test does)")
    return found[-1]


class PostgresServer:
    """One server: ``start()`` (initdb, then pg_ctl start), ``dsn``, ``stop()`` (and delete)."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.bin = bin_dir()
        self.root = None
        self.dsn = self.dsn_of("postgres")
        self._numbers = itertools.count(1)

    def dsn_of(self, database):
        return f"postgresql://{DATABASE_USER}@127.0.0.1:{self.port}/{database}"

    def fresh_database(self, prefix="db"):
        """Create an empty database (about 80 ms) and return its DSN."""
        import psycopg
        name = f"{prefix}_{os.getpid()}_{next(self._numbers)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn_of(name)

    @property
    def data_dir(self):
        return self.root / "data"

    def _run(self, *argv):
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=START_SECONDS)

    def start(self):
        self.root = Path(tempfile.mkdtemp(prefix="ghl-postgres-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, user=SERVICE_USER)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", DATABASE_USER, "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")
            # Loopback TCP only, no Unix socket; fsync off: a test database never outlives the run.
            options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories= -c fsync=off"
            self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(self.root / "server.log"),
                      "-w", "-t", str(START_SECONDS), "start")
        except subprocess.CalledProcessError as failed:
            log = self.root / "server.log"
            detail = log.read_text()[-2000:] if log.exists() else failed.stderr[-2000:]
            self._remove()
            raise RuntimeError(f"PostgreSQL did not start: {detail}") from None
        return self

    def stop(self):
        if self.root is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        finally:
            self._remove()

    def _remove(self):
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
