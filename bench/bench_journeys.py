"""Journeys per second on the embedded graph server: batched UNWIND against one MERGE per row.

Sets up what a fresh machine runs: a private PostgreSQL cluster (pgserver) and the embedded
ArcadeDB Bolt server, both in a temporary directory that is deleted at the end. It generates a
population with the real worker, then runs the same journey run (same seed, same NPCs) into a
fresh graph database for each way of writing:

- batched: `JourneyRunner` as shipped, one `UNWIND $rows ... MERGE` statement per kind of row and
  one managed transaction per batch, at several batch sizes;
- per row: the same runner and the same statements, but every row sent as its own statement in
  its own auto-commit transaction: the straightforward way to write it.

Between runs the pets that the journeys added are removed from PostgreSQL, so every run does the
same work. The times include sampling, reading the NPCs and writing new pets to PostgreSQL.

    uv run python bench/bench_journeys.py --npcs 10000 --batch-sizes 250 1000 2500 5000
"""

import argparse
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import neo4j
import psycopg

import willow_core.journey.runner as runner_module
from willow_core.config import JourneySettings, parse_settings
from willow_core.graph.client import GRAPH_PASSWORD_ENV, GraphClient
from willow_core.graph.embedded import ROOT_USER, EmbeddedGraphServer
from willow_core.journey.runner import JourneyReport, JourneyRunner
from willow_core.journey.writes import STATEMENTS, JourneyRows
from willow_core.population.generator import GENERATOR_NAME
from willow_core.population.worker import run_worker
from willow_core.store.migrations import migrate
from willow_core.store.runs import create_run

SEED = 20260101


def per_row_write(graph: GraphClient) -> Callable[[neo4j.ManagedTransaction, JourneyRows], int]:
    """Return a replacement of `write_rows` that ignores the transaction it is given and sends
    every row in its own auto-commit transaction instead."""

    def write(tx: neo4j.ManagedTransaction, rows: JourneyRows) -> int:
        created = 0
        driver = graph.driver()
        with driver.session(database=graph.target().database) as session:
            for kind, statement in STATEMENTS:
                for row in rows.of(kind):
                    created += session.run(statement, rows=[row]).consume().counters.nodes_created
        return created

    return write


@contextmanager
def replaced_write(graph: GraphClient) -> Iterator[None]:
    original = runner_module.write_rows  # type: ignore[attr-defined]
    runner_module.write_rows = per_row_write(graph)  # type: ignore[attr-defined,assignment]
    try:
        yield
    finally:
        runner_module.write_rows = original  # type: ignore[attr-defined]


def reset_journey_pets(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM pets WHERE pet_id IN (SELECT pet_id FROM journey_pets)")
        conn.execute("TRUNCATE journey_pets")


def run_once(
    label: str,
    dsn: str,
    server: EmbeddedGraphServer,
    npcs: int,
    batch_size: int,
    *,
    per_row: bool,
) -> JourneyReport:
    reset_journey_pets(dsn)
    database = f"bench_{label.replace(' ', '_').replace('-', '_')}"
    server.drop_database(database)
    server.create_database(database)
    info = server.running()
    assert info is not None
    settings = parse_settings({"graph": {"uri": info.uri, "user": ROOT_USER, "database": database}})
    graph = GraphClient(settings)
    journey = JourneySettings(batch_size=batch_size)
    runner = JourneyRunner(dsn, graph, journey)
    try:
        if per_row:
            with replaced_write(graph):
                report = runner.run(npcs, SEED)
        else:
            report = runner.run(npcs, SEED)
    finally:
        graph.close()
        server.drop_database(database)
    assert report.complete and not report.errors, report.stopped
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npcs", type=int, default=10_000, help="NPCs per journey run")
    parser.add_argument(
        "--population", type=int, default=30_000, help="customers to generate first"
    )
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[250, 1_000, 2_500, 5_000],
        help="batch sizes of the batched runs",
    )  # fmt: skip
    parser.add_argument(
        "--per-row-npcs", type=int, default=None, help="NPCs of the per-row run (default: --npcs)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="willow-bench-journeys-"))
    server = EmbeddedGraphServer(workdir / "arcadedb", heap_mb=2048)
    pg = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            pg = pgserver.get_server(workdir / "pg", cleanup_mode="stop")
        dsn = str(pg.get_uri("postgres"))
        with psycopg.connect(dsn, autocommit=True) as conn:
            migrate(conn)
            run = create_run(
                conn, total=args.population, batch_size=5_000, seed=7, generator=GENERATOR_NAME
            )
        assert run_worker(dsn, run.run_id) == "finished"

        started = time.monotonic()
        server.ensure_started()
        startup = time.monotonic() - started
        os.environ[GRAPH_PASSWORD_ENV] = server.password()

        # One unmeasured run warms the JVM's JIT, as a long-lived server would be.
        run_once("warm-up", dsn, server, min(2_000, args.npcs), 1_000, per_row=False)

        print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python "
              f"{platform.python_version()}; embedded ArcadeDB start {startup:.1f} s")  # fmt: skip
        print(f"{'way':<24}{'NPCs':>8}{'batch':>8}{'seconds':>10}{'journeys/s':>12}{'nodes':>9}")
        for batch_size in args.batch_sizes:
            report = run_once(
                f"batched {batch_size}", dsn, server, args.npcs, batch_size, per_row=False
            )
            print(
                f"{'batched UNWIND':<24}{args.npcs:>8}{batch_size:>8}"
                f"{report.elapsed_seconds:>10.1f}{report.journeys_per_second:>12.0f}"
                f"{report.nodes_created:>9}"
            )
        per_row_npcs = args.per_row_npcs or args.npcs
        report = run_once("per row", dsn, server, per_row_npcs, 1_000, per_row=True)
        print(
            f"{'one MERGE per row':<24}{per_row_npcs:>8}{'-':>8}"
            f"{report.elapsed_seconds:>10.1f}{report.journeys_per_second:>12.0f}"
            f"{report.nodes_created:>9}"
        )
    finally:
        server.stop()
        if pg is not None:
            pg.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
