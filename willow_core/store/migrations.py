"""Versioned schema migrations.

Each migration runs once, in its own transaction, and is recorded in `schema_migrations`. An
advisory lock serialises concurrent callers (the TUI and several workers starting together), so
`migrate` is safe to call on every start.
"""

import logging
from dataclasses import dataclass
from typing import LiteralString

import psycopg

from willow_core.store.db import wrap_errors

log = logging.getLogger("willow.store.migrations")

# Arbitrary constant that identifies Willow's migration lock among other advisory locks.
_MIGRATION_LOCK_KEY = 0x57_49_4C_4C


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[LiteralString, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "population, runs, batches and workers",
        (
            """
            CREATE TABLE runs (
                run_id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                seed              bigint NOT NULL CHECK (seed >= 0),
                total             bigint NOT NULL CHECK (total > 0),
                batch_size        integer NOT NULL CHECK (batch_size > 0),
                first_customer_id bigint NOT NULL CHECK (first_customer_id >= 0),
                generator         text NOT NULL,
                requested_state   text NOT NULL CHECK (requested_state IN ('running', 'paused')),
                created_at        timestamptz NOT NULL DEFAULT now(),
                resumed_at        timestamptz NOT NULL DEFAULT now(),
                finished_at       timestamptz
            )
            """,
            """
            CREATE TABLE batches (
                run_id            integer NOT NULL REFERENCES runs ON DELETE CASCADE,
                batch_index       integer NOT NULL CHECK (batch_index >= 0),
                first_customer_id bigint NOT NULL,
                size              integer NOT NULL CHECK (size > 0),
                customers         integer,
                pets              integer,
                worker_id         integer,
                started_at        timestamptz,
                committed_at      timestamptz,
                PRIMARY KEY (run_id, batch_index)
            )
            """,
            "CREATE INDEX batches_committed_at ON batches (run_id, committed_at)",
            """
            CREATE INDEX batches_pending ON batches (run_id, batch_index)
                WHERE committed_at IS NULL
            """,
            """
            CREATE TABLE workers (
                worker_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                run_id       integer NOT NULL REFERENCES runs ON DELETE CASCADE,
                host         text NOT NULL,
                pid          integer NOT NULL,
                log_path     text,
                started_at   timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL DEFAULT now(),
                stopped_at   timestamptz,
                exit_reason  text
            )
            """,
            "CREATE INDEX workers_run ON workers (run_id, stopped_at)",
            """
            CREATE TABLE customers (
                customer_id   bigint PRIMARY KEY,
                run_id        integer NOT NULL,
                batch_index   integer NOT NULL,
                title         text NOT NULL,
                first_name    text NOT NULL,
                last_name     text NOT NULL,
                date_of_birth date NOT NULL,
                email         text NOT NULL,
                phone         text NOT NULL,
                address_line1 text NOT NULL,
                address_line2 text,
                town          text NOT NULL,
                postcode      text NOT NULL,
                created_at    timestamptz NOT NULL
            )
            """,
            """
            CREATE TABLE pets (
                pet_id           bigint PRIMARY KEY,
                customer_id      bigint NOT NULL,
                name             text NOT NULL,
                species          text NOT NULL,
                breed            text NOT NULL,
                sex              text NOT NULL CHECK (sex IN ('male', 'female')),
                date_of_birth    date NOT NULL,
                microchipped     boolean NOT NULL,
                microchip_number text,
                neutered         boolean NOT NULL
            )
            """,
            "CREATE INDEX pets_customer ON pets (customer_id)",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def migrate(conn: psycopg.Connection) -> int:
    """Apply every migration the database lacks; return how many ran.

    Raises:
        StoreError: a migration failed; it is rolled back and later ones are not attempted.
    """
    applied_now = 0
    with wrap_errors("schema migration"), conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        conn.execute(
            """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
        )
        rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        done = {version for (version,) in rows}

        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            with conn.transaction():
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            log.info("applied migration %d: %s", migration.version, migration.name)
            applied_now += 1
    return applied_now
