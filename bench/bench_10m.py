"""A full-size run: 10 million customers with the real worker processes, measured as it goes.

Starts a private PostgreSQL cluster (pgserver) in a temporary directory, generates the run with
`ControlRoom.start_run` (detached worker processes on this machine) and records:

- throughput: customers per second over the whole run;
- the TUI's progress refresh (`willow_core.store.runs.progress`): latency of every call made
  once a second during the run, and 50 calls on the finished 10-million-customer run;
- sampling 1,000 NPCs the way a journey does (`sample_customer_ids` + `load_npcs`), 10 times;
- each worker's resident memory (RSS), sampled every second.

The cluster and its directory are deleted at the end. Needs about 6 GB of free disk.

    uv run python bench/bench_10m.py --customers 10000000 --workers 2
"""

import argparse
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import psutil
import psycopg

from willow_core.config import parse_settings
from willow_core.control import ControlRoom
from willow_core.journey.sampling import load_npcs, sample_customer_ids
from willow_core.store import runs
from willow_core.store.runs import RunState


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms over {len(ordered)} calls"
    )


def _sampling(conn: psycopg.Connection, when: str) -> None:
    """Time sampling 1,000 NPCs with their pets 20 times, as a journey does."""
    total, drawing = [], []
    for seed in range(20):
        before = time.perf_counter()
        ids = sample_customer_ids(conn, seed, 1_000)
        drawn = time.perf_counter()
        npcs = load_npcs(conn, seed, ids)
        total.append(time.perf_counter() - before)
        drawing.append(drawn - before)
        assert len(npcs) == 1_000
    print(
        f"sampling 1,000 NPCs with their pets, {when} (first call {total[0] * 1000:.1f} ms): "
        f"{_ms(total)}"
    )
    print(f"  of which drawing the 1,000 ids from the batch rows: {_ms(drawing)}")


def _remove_cluster(server: object, directory: Path) -> None:
    """Stop the private cluster, wait for PostgreSQL to exit, then delete its directory."""
    server.cleanup()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while any(directory.rglob("postmaster.pid")) and time.monotonic() < deadline:
        time.sleep(0.2)
    shutil.rmtree(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="willow-10m-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(directory / "pg", cleanup_mode="stop")
    dsn = server.get_uri("postgres")
    settings = parse_settings(
        {
            "postgres": {"dsn": dsn},
            "generation": {
                "total": args.customers,
                "batch_size": args.batch_size,
                "workers": args.workers,
            },
        }
    )
    room = ControlRoom(settings)
    try:
        started = time.perf_counter()
        run = room.start_run()
        during: list[float] = []
        rss: dict[int, list[tuple[float, int]]] = {}
        with psycopg.connect(dsn, autocommit=True) as conn:
            while True:
                time.sleep(1.0)
                before = time.perf_counter()
                progress = runs.progress(conn, run.run_id)
                during.append(time.perf_counter() - before)
                for worker in runs.live_workers(conn, run.run_id):
                    try:
                        memory = psutil.Process(worker.pid).memory_info().rss
                    except psutil.NoSuchProcess:
                        continue
                    rss.setdefault(worker.pid, []).append((progress.fraction, memory))
                if progress.state in (RunState.FINISHED, RunState.CRASHED):
                    break
            elapsed = time.perf_counter() - started
            if progress.state is not RunState.FINISHED:
                raise SystemExit(f"run {run.run_id} {progress.state}: {progress.last_exit_reason}")
            print(
                f"run: {progress.customers:,} customers and {progress.pets:,} pets in "
                f"{elapsed:.0f} s = {progress.customers / elapsed:,.0f} customers/s "
                f"({args.workers} workers, batches of {args.batch_size:,})"
            )
            size = conn.execute(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ).fetchone()
            print(f"database size: {size[0] if size else '?'}")
            print(f"progress query during the run: {_ms(during)}")

            after = []
            for _ in range(50):
                before = time.perf_counter()
                runs.progress(conn, run.run_id)
                after.append(time.perf_counter() - before)
            print(f"progress query on the finished run: {_ms(after)}")

            # The finishing worker runs ANALYZE before it exits, so wait for it. A user sees the
            # run finished in the TUI only a moment before that.
            while runs.live_workers(conn, run.run_id):
                time.sleep(0.5)
            _sampling(conn, "right after the run")
            before = time.perf_counter()
            conn.execute("VACUUM (ANALYZE) customers, pets")
            print(f"VACUUM (ANALYZE) customers, pets: {time.perf_counter() - before:.0f} s")
            _sampling(conn, "after VACUUM")

        for pid, series in rss.items():
            start = [m for f, m in series if f <= 0.2]
            end = [m for f, m in series if f >= 0.8]
            peak = max(m for _, m in series)
            print(
                f"worker {pid} RSS: {min(start or [0]) / 2**20:.0f}-{max(start or [0]) / 2**20:.0f}"
                f" MiB in the first 20% of the run, {min(end or [0]) / 2**20:.0f}-"
                f"{max(end or [0]) / 2**20:.0f} MiB in the last 20%, peak {peak / 2**20:.0f} MiB "
                f"({len(series)} samples)"
            )
    finally:
        room.close()
        _remove_cluster(server, directory)


if __name__ == "__main__":
    main()
