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
    Migration(
        2,
        "quote form validation log and milestone checks",
        (
            """
            CREATE TABLE validation_runs (
                validation_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                mode             text NOT NULL CHECK (mode IN ('sample', 'all', 'ids')),
                selected         bigint NOT NULL CHECK (selected >= 0),
                form_name        text NOT NULL,
                form_version     integer NOT NULL,
                form_path        text NOT NULL,
                form_fingerprint text NOT NULL,
                as_of            date NOT NULL,
                state            text NOT NULL DEFAULT 'running'
                                 CHECK (state IN ('running', 'finished', 'failed', 'cancelled')),
                npcs_checked     bigint NOT NULL DEFAULT 0,
                npcs_failed      bigint NOT NULL DEFAULT 0,
                pets_checked     bigint NOT NULL DEFAULT 0,
                failures         bigint NOT NULL DEFAULT 0,
                started_at       timestamptz NOT NULL DEFAULT now(),
                updated_at       timestamptz NOT NULL DEFAULT now(),
                finished_at      timestamptz,
                error            text
            )
            """,
            """
            CREATE TABLE validation_failures (
                failure_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                validation_id integer NOT NULL REFERENCES validation_runs ON DELETE CASCADE,
                customer_id   bigint NOT NULL,
                pet_id        bigint,
                field         text NOT NULL,
                rule          text NOT NULL,
                value         text,
                message       text NOT NULL
            )
            """,
            """
            CREATE INDEX validation_failures_run ON validation_failures (validation_id, failure_id)
            """,
            """
            CREATE TABLE validation_field_stats (
                validation_id integer NOT NULL REFERENCES validation_runs ON DELETE CASCADE,
                field         text NOT NULL,
                checked       bigint NOT NULL,
                valid         bigint NOT NULL,
                PRIMARY KEY (validation_id, field)
            )
            """,
            """
            CREATE TABLE validation_rule_counts (
                validation_id integer NOT NULL REFERENCES validation_runs ON DELETE CASCADE,
                field         text NOT NULL,
                rule          text NOT NULL,
                failures      bigint NOT NULL,
                PRIMARY KEY (validation_id, field, rule)
            )
            """,
            """
            CREATE TABLE milestone_checks (
                check_run_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                check_name   text NOT NULL,
                passed       boolean NOT NULL,
                population   bigint NOT NULL,
                detail       text NOT NULL,
                ran_at       timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX milestone_checks_latest ON milestone_checks (check_name, check_run_id)",
        ),
    ),
    Migration(
        3,
        "pets acquired during customer journeys",
        (
            # A journey gives an NPC without a suitable pet a new one (written to pets). This
            # row makes a rerun of the same journey seed find that pet instead of adding another.
            """
            CREATE TABLE journey_pets (
                journey_seed bigint NOT NULL,
                customer_id  bigint NOT NULL,
                pet_id       bigint NOT NULL UNIQUE,
                created_at   timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (journey_seed, customer_id)
            )
            """,
        ),
    ),
    Migration(
        5,
        "population generator v2: county, sex, pre-existing conditions, run settings",
        (
            "ALTER TABLE customers ADD COLUMN county text",
            "ALTER TABLE customers ADD COLUMN sex text CHECK (sex IN ('female', 'male'))",
            "ALTER TABLE pets ADD COLUMN pre_existing_conditions text",
            # The population settings and reference-table fingerprints a run was created with;
            # every worker generates from these, so all hosts produce the same population.
            "ALTER TABLE runs ADD COLUMN population jsonb",
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
