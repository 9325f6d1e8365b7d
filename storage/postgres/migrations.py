"""The PostgreSQL schema, versioned: ``schema_migrations`` records each step applied.

Every process (gunicorn workers, hook workers, on every host) runs ``migrate`` when it opens
the store. A step runs in its own transaction after ``pg_advisory_xact_lock(MIGRATION_LOCK)``,
re-reading the applied versions under the lock: processes starting at once queue on the lock
and the later ones find the step applied. DDL is transactional in PostgreSQL, so a step that
fails leaves nothing half-made. A process up to date takes no lock (one read).

Tables (names in the connection's ``search_path``, i.e. its first schema):

- ``dedupe_scopes``: per dedupe scope (64-hex text) a small integer id, first/last poll and
  the next sequence number. ``seen``: per scope and identity only ``(scope_id, last_day, ident)``
  (``storage.idents.ident_of``; ``last_day`` = epoch day last seen, for retention): the lean
  row kept for as long as the retention. ``seen_items``: the item bodies, only while they can
  still be answered: the backlog (``first_answered`` NULL, a REST hook's outbox) and the
  redelivery window after the first answer; ``prune`` drops the rest.
- ``watch_scopes``/``watched``: change triggers' baselines (``triggers.changes``); ``mark`` is
  kept as epoch ms (``mark_ms``) or text (``mark_text``).
- ``hook_subscriptions``/``hook_owner_turns`` (+ sequence ``hook_owner_turn``): REST hooks,
  their leases and the owners' round-robin turns.
- ``rate_budgets`` + function ``take_rate_slot`` and ``shared_reads``: UNLOGGED (fast to write,
  emptied by a server crash, which only forgets a few seconds of rate slots and reads in flight).
- ``health_probe``: the row ``writable()`` rewrites.
"""

import logging

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of migrations (bigint form: never conflicts with the two-int keys
# of storage.postgres' other advisory locks).
MIGRATION_LOCK = 0x6768_6C7A_6170_0001  # "ghlzap" + 1
BODIES_COMPACTION_LOCK = 0x6768_6C7A_6170_0002  # "ghlzap" + 2: one process compacts seen_items at a time

# Namespaces (first key) of the two-int advisory locks.
HOOK_OWNER_LOCK = 0x48_4B_4F_57  # "HKOW"
RATE_BUDGET_LOCK = 0x52_41_54_45  # "RATE"

V1_SCHEMA = f"""
CREATE TABLE dedupe_scopes (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope text NOT NULL UNIQUE,
    first_poll double precision NOT NULL,
    last_poll double precision NOT NULL,
    next_seq bigint NOT NULL DEFAULT 0
);
-- No index on last_poll: a poll's UPDATE of the row stays HOT (prune scans the table hourly).

-- Column order matters for size: int4, int2, then int8 packs into 16 bytes.
CREATE TABLE seen (
    scope_id integer NOT NULL,
    last_day smallint NOT NULL,
    ident bigint NOT NULL,
    PRIMARY KEY (scope_id, ident)
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX seen_by_last_day ON seen (last_day);

CREATE TABLE seen_items (
    scope_id integer NOT NULL,
    ident bigint NOT NULL,
    seq bigint NOT NULL,
    order_ts double precision NOT NULL,
    first_answered double precision,
    item text NOT NULL,
    PRIMARY KEY (scope_id, ident)
) WITH (autovacuum_vacuum_scale_factor = 0.05);
-- The backlog (first_answered NULL, oldest first) and the redelivery window of a scope.
CREATE INDEX seen_items_by_answer ON seen_items (scope_id, first_answered, order_ts, seq);

CREATE TABLE watch_scopes (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope text NOT NULL UNIQUE,
    first_poll double precision NOT NULL,
    last_poll double precision NOT NULL,
    scan_from text,
    changes bigint NOT NULL DEFAULT 0
);

CREATE TABLE watched (
    scope_id integer NOT NULL,
    ghl_id text NOT NULL,
    vals text NOT NULL,
    mark_ms bigint,
    mark_text text,
    changes bigint NOT NULL,
    last_seen bigint NOT NULL,
    PRIMARY KEY (scope_id, ghl_id)
);
CREATE INDEX watched_by_last_seen ON watched (last_seen);

CREATE TABLE hook_subscriptions (
    id text PRIMARY KEY,
    trigger text NOT NULL,
    inputs text NOT NULL,
    token_ciphertext text NOT NULL,
    owner text NOT NULL,
    target_url text NOT NULL,
    interval_seconds integer NOT NULL,
    created_at double precision NOT NULL,
    next_poll_at double precision NOT NULL,
    last_poll_at double precision,
    last_delivery_at double precision,
    last_error text,
    last_error_at double precision,
    delivery_failures integer NOT NULL DEFAULT 0,
    next_delivery_at double precision,
    lease_owner text,
    lease_until double precision NOT NULL DEFAULT 0
);
-- A subscription is due at the earlier of its two due times (LEAST ignores a NULL delivery).
CREATE INDEX hook_subscriptions_by_due ON hook_subscriptions ((LEAST(next_poll_at, next_delivery_at)));
CREATE INDEX hook_subscriptions_by_owner_due
    ON hook_subscriptions (owner, (LEAST(next_poll_at, next_delivery_at)));

CREATE SEQUENCE hook_owner_turn;
CREATE TABLE hook_owner_turns (
    owner text PRIMARY KEY,
    turn bigint NOT NULL DEFAULT 0
);
CREATE INDEX hook_owner_turns_by_turn ON hook_owner_turns (turn, owner);

CREATE UNLOGGED TABLE rate_budgets (
    budget text PRIMARY KEY,
    slots double precision[] NOT NULL
);

-- One round trip per slot: under the budget's advisory lock, keep the slots taken within the
-- window, and take one if fewer than p_max; else the seconds until the oldest frees (> 0).
CREATE FUNCTION take_rate_slot(p_budget text, p_now double precision, p_window double precision,
                               p_max integer) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    kept double precision[];
BEGIN
    PERFORM pg_advisory_xact_lock({RATE_BUDGET_LOCK}, hashtext(p_budget));
    SELECT COALESCE(ARRAY(SELECT t FROM unnest(b.slots) AS t WHERE t > p_now - p_window ORDER BY t), '{{}}')
      INTO kept FROM rate_budgets AS b WHERE b.budget = p_budget;
    IF kept IS NULL THEN
        kept := '{{}}';
    END IF;
    IF COALESCE(array_length(kept, 1), 0) < p_max THEN
        INSERT INTO rate_budgets (budget, slots) VALUES (p_budget, kept || p_now)
          ON CONFLICT (budget) DO UPDATE SET slots = EXCLUDED.slots;
        RETURN 0.0;
    END IF;
    RETURN GREATEST(0.01, kept[1] + p_window - p_now);
END
$$;

CREATE UNLOGGED TABLE shared_reads (
    key text PRIMARY KEY,
    owner text NOT NULL,
    status integer,
    body text,
    headers text,
    fetched_at double precision,
    lease_until double precision NOT NULL,
    waiters integer NOT NULL DEFAULT 0,
    leader text
);
CREATE INDEX shared_reads_by_owner ON shared_reads (owner);

CREATE TABLE health_probe (
    id integer PRIMARY KEY CHECK (id = 1),
    probed_at double precision NOT NULL
);
"""

# (version, description, SQL). Append only: a released step never changes.
MIGRATIONS = [
    (1, "dedupe (lean seen + bodies), change baselines, hooks, rate budget, shared reads", V1_SCHEMA),
]

LATEST = MIGRATIONS[-1][0]


def applied_version(conn):
    """The highest version applied (0 for an empty database); no lock."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn, migrations=MIGRATIONS):
    """Apply the steps ``conn``'s database lacks; returns the versions this call applied.

    ``conn`` is an autocommit connection; each step is one transaction under the migration lock.
    """
    if applied_version(conn) >= migrations[-1][0]:
        return []
    done = []
    for version, description, sql in migrations:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                         " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)).fetchone():
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                         (version, description))
        log.info("database schema migrated to version %s (%s)", version, description)
        done.append(version)
    return done
