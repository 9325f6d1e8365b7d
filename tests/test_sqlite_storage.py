"""One SQLite file, many processes: gunicorn workers and the hook worker all start on a database
that may not exist yet, and every one of them must come up (a worker that fails to boot makes
gunicorn shut the whole service down)."""

import sqlite3
import subprocess
import sys
import time

from tests.conftest import ROOT

OPEN_EVERY_STORE = """
import sys, time
from ghl.rate_budget import RateBudget
from ghl.shared_reads import SharedReads
from triggers.dedupe_store import SqliteDedupeStore
from triggers.hooks_store import SqliteHookStore, TokenCipher
path, start_at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
SqliteDedupeStore(path)
SqliteHookStore(path, TokenCipher("key"))
RateBudget(path)
SharedReads(path)
"""


def test_processes_starting_together_on_a_new_database_all_come_up(tmp_path):
    failures = []
    for round_number in range(4):
        path = tmp_path / f"round{round_number}.sqlite3"
        start_at = time.time() + 1.5  # after every interpreter has imported, so they collide
        processes = [subprocess.Popen([sys.executable, "-c", OPEN_EVERY_STORE, str(path), str(start_at)],
                                      cwd=ROOT, stderr=subprocess.PIPE)
                     for _ in range(8)]
        for process in processes:
            _, stderr = process.communicate(timeout=60)
            if process.returncode != 0:
                failures.append(stderr.decode()[-400:])
    assert not failures, failures[0]

    with sqlite3.connect(tmp_path / "round0.sqlite3") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"seen", "scopes", "hook_subscriptions", "rate_slots", "shared_reads"} <= tables
