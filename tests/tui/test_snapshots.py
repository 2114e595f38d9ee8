"""Snapshot of the main screen with a deterministic finished run, and the embedded default."""

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.tui.test_population_keys import pane_text, wait_for
from willow_core.config import Settings, parse_settings
from willow_core.population.worker import run_worker
from willow_core.store import runs
from willow_core.store.db import connect
from willow_core.store.embedded import embedded_cluster_dir, stop_embedded_postgres
from willow_core.store.migrations import migrate
from willow_tui.app import WillowApp

SNAPSHOT_DATABASE = "willow_snapshot"

WORKER_LOG = """\
2026-01-01 10:00:00,001 INFO worker 1 (pid 4242) serving run 1
2026-01-01 10:00:00,002 INFO claimed batch 0 (customers 0+400)
2026-01-01 10:00:00,450 INFO committed batch 0: 400 customers, 140 pets
2026-01-01 10:00:04,990 INFO worker 1 stopped: finished
"""


@pytest.fixture
def snapshot_settings(postgres_cluster: str, tmp_path: Path) -> Iterator[Settings]:
    """A finished run of 4,000 customers whose timestamps are fixed, in a fixed-name database."""
    with psycopg.connect(postgres_cluster, autocommit=True) as admin:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(SNAPSHOT_DATABASE)
        )
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SNAPSHOT_DATABASE)))
    dsn = psycopg.conninfo.make_conninfo(postgres_cluster, dbname=SNAPSHOT_DATABASE)

    with connect(dsn, autocommit=True) as conn:
        migrate(conn)
        run = runs.create_run(conn, total=4_000, batch_size=400, seed=2026, generator="test")
    assert run_worker(dsn, run.run_id) == "finished"

    log_path = tmp_path / "worker.log"
    log_path.write_text(WORKER_LOG)
    with connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            UPDATE batches
            SET started_at = timestamptz '2026-01-01 10:00:00+00' + batch_index * interval '0.5 s',
                committed_at = timestamptz '2026-01-01 10:00:00.45+00'
                               + batch_index * interval '0.5 s'
            """
        )
        conn.execute(
            """
            UPDATE runs SET created_at = timestamptz '2026-01-01 10:00:00+00',
                            resumed_at = timestamptz '2026-01-01 10:00:00+00',
                            finished_at = timestamptz '2026-01-01 10:00:04.95+00'
            """
        )
        conn.execute("UPDATE workers SET log_path = %s", (str(log_path),))

    yield parse_settings({"postgres": {"dsn": dsn}})

    with psycopg.connect(postgres_cluster, autocommit=True) as admin:
        admin.execute(drop)


def test_main_screen_snapshot(snap_compare, snapshot_settings: Settings) -> None:
    async def until_loaded(pilot) -> None:  # type: ignore[no-untyped-def]
        # Every pane loads on its own worker; the snapshot waits for all of them.
        await wait_for(pilot, lambda: "State finished" in pane_text(pilot.app), "the run")
        await wait_for(
            pilot,
            lambda: "Reading" not in pane_text(pilot.app, "validation-status"),
            "the validation pane",
        )
        # The status text grows from one line to two, so let the layout settle after it.
        status = pilot.app.query_one("#validation-status")
        await wait_for(pilot, lambda: status.size.height == 2, "the validation pane's layout")
        await pilot.pause(0.5)

    assert snap_compare(
        WillowApp(snapshot_settings), terminal_size=(110, 32), run_before=until_loaded
    )


async def test_embedded_default_starts_postgres() -> None:
    app = WillowApp(Settings())
    try:
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: "No generation run yet" in pane_text(app), "empty state")
            assert app.sub_title == "embedded PostgreSQL"
        assert (embedded_cluster_dir() / "postmaster.pid").is_file()
    finally:
        assert stop_embedded_postgres()
