"""The PostgreSQL server the tests run against (bench/postgres_server.py): real, loopback only,
not run as root, and gone when stopped."""

import os
import socket

import psycopg
import pytest

from bench.postgres_server import PostgresServer


def test_the_session_server_is_a_real_postgresql_on_loopback(postgres_server):
    with psycopg.connect(postgres_server.dsn) as conn:
        version, address = conn.execute("SELECT current_setting('server_version_num')::int, inet_server_addr()").fetchone()
        conn.execute("CREATE TEMPORARY TABLE seen (identity text PRIMARY KEY)")
        conn.execute("INSERT INTO seen VALUES ('a'), ('b') ON CONFLICT DO NOTHING")
        assert conn.execute("SELECT count(*) FROM seen").fetchone()[0] == 2
    assert version >= 150000
    assert str(address) == "127.0.0.1"
    assert os.stat(postgres_server.data_dir).st_uid != 0, "PostgreSQL must not run as root"


def test_a_stopped_server_is_gone_with_its_files():
    server = PostgresServer().start()
    root, port = server.root, server.port
    with psycopg.connect(server.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.stop()
    assert not root.exists()
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(2)
        probe.connect(("127.0.0.1", port))
