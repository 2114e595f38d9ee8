"""End-to-end generation throughput: generator v2 (NumPy columns + COPY) against the simplest plan.

The simplest plan is what the team first planned: Faker `en_GB` generating customers and pets
row by row, written with `executemany` INSERTs, one commit per batch. Generator v2 runs through
the real worker (`run_worker`: claim, generate, COPY, mark the batch, commit) in 1 and in
`--workers` processes. A third measurement compares COPY text (what `copy_batch` sends) with
psycopg's binary COPY of the same batches.

Everything runs against a private PostgreSQL cluster (pgserver) in a temporary directory, which
is deleted at the end, unless `--dsn` names a database to use (its population tables are
truncated).

    uv run python bench/bench_generation.py --customers 1000000 --baseline 20000 --workers 2
"""

import argparse
import multiprocessing
import platform
import random
import shutil
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from faker import Faker

from willow_core.population.generator import GENERATOR_NAME, build_profile, generate_batch
from willow_core.population.worker import run_worker
from willow_core.store import runs
from willow_core.store.ingest import copy_batch, copy_batch_binary
from willow_core.store.migrations import migrate

BATCH_SIZE = 20_000
BASELINE_BATCH = 1_000


def _fresh(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("TRUNCATE customers, pets, runs, batches, workers CASCADE")


def baseline(dsn: str, customers: int) -> float:
    """Faker en_GB row by row, executemany INSERT, commit per batch; return customers/s."""
    fake = Faker("en_GB")
    fake.seed_instance(1)
    rng = random.Random(1)
    reference = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for first in range(0, customers, BASELINE_BATCH):
            customer_rows, pet_rows = [], []
            for customer_id in range(first, min(first + BASELINE_BATCH, customers)):
                female = rng.random() < 0.51
                first_name = fake.first_name_female() if female else fake.first_name_male()
                last_name = fake.last_name()
                created = reference - timedelta(seconds=rng.randrange(2 * 365 * 86_400))
                customer_rows.append(
                    (
                        customer_id, 0, 0, "Mrs" if female else "Mr", first_name, last_name,
                        created.date() - timedelta(days=rng.randrange(18 * 366, 90 * 365)),
                        f"{first_name}.{last_name}@example.com".lower(),
                        f"07700 900{rng.randrange(1000):03d}", fake.street_address(), None,
                        fake.city(), fake.postcode(), created,
                    )
                )  # fmt: skip
                if rng.random() < 0.3:
                    for j in range(1 + (rng.random() < 0.2)):
                        chipped = rng.random() < 0.7
                        pet_rows.append(
                            (
                                customer_id * 8 + j, customer_id, fake.first_name(),
                                rng.choice(("dog", "cat", "rabbit")), "Crossbreed",
                                rng.choice(("female", "male")),
                                date(2026, 1, 1) - timedelta(days=rng.randrange(60, 5000)),
                                chipped, f"826{rng.randrange(10**12):012d}" if chipped else None,
                                rng.random() < 0.7,
                            )
                        )  # fmt: skip
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO customers (customer_id, run_id, batch_index, title, first_name, "
                    "last_name, date_of_birth, email, phone, address_line1, address_line2, town, "
                    "postcode, created_at) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    customer_rows,
                )
                cursor.executemany(
                    "INSERT INTO pets (pet_id, customer_id, name, species, breed, sex, "
                    "date_of_birth, microchipped, microchip_number, neutered) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    pet_rows,
                )
            conn.commit()
    return customers / (time.perf_counter() - started)


def v2_workers(dsn: str, customers: int, workers: int) -> tuple[float, float, int]:
    """Run the real worker in `workers` processes; return customers/s, wall seconds, pets."""
    _fresh(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        run = runs.create_run(
            conn,
            total=customers,
            batch_size=BATCH_SIZE,
            seed=20_260_101,
            generator=GENERATOR_NAME,
            population=build_profile().describe(),
        )
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    processes = [context.Process(target=run_worker, args=(dsn, run.run_id)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT sum(customers), sum(pets), count(*) FILTER (WHERE committed_at IS NULL), "
            "extract(epoch FROM max(committed_at) - min(started_at)) "
            "FROM batches WHERE run_id = %s",
            (run.run_id,),
        ).fetchone()
    assert row is not None and row[0] == customers and row[2] == 0, row
    print(
        f"  ({workers} worker(s): {customers / float(row[3]):,.0f} customers/s from the first "
        "batch claimed to the last commit, without process start-up)"
    )
    return customers / elapsed, elapsed, int(row[1])


def copy_formats(dsn: str, batches: int, rounds: int = 3) -> dict[str, tuple[float, float]]:
    """COPY the same generated batches as text and as binary, alternating, `rounds` times.

    Returns, per format, the best customers/s of all rounds and the mean client CPU seconds per
    batch (time spent in this process building and sending rows).
    """
    generated = [generate_batch(7, k, k * BATCH_SIZE, BATCH_SIZE) for k in range(batches)]
    best: dict[str, float] = {}
    cpu: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, copy in (("text", copy_batch), ("binary", copy_batch_binary)):
            _fresh(dsn)
            with psycopg.connect(dsn) as conn:
                started = time.perf_counter()
                cpu_started = time.process_time()
                for k, batch in enumerate(generated):
                    copy(conn, batch, 0, k)
                    conn.commit()
                rate = batches * BATCH_SIZE / (time.perf_counter() - started)
                cpu.setdefault(name, []).append((time.process_time() - cpu_started) / batches)
            best[name] = max(best.get(name, 0.0), rate)
    return {name: (best[name], sum(cpu[name]) / len(cpu[name])) for name in best}


def _remove_cluster(server: object, directory: Path) -> None:
    """Stop the private cluster, wait for PostgreSQL to exit, then delete its directory."""
    server.cleanup()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while any(directory.rglob("postmaster.pid")) and time.monotonic() < deadline:
        time.sleep(0.2)
    shutil.rmtree(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers for v2")
    parser.add_argument("--baseline", type=int, default=20_000, help="customers for the baseline")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for v2")
    parser.add_argument("--dsn", help="database to use instead of a private pgserver cluster")
    args = parser.parse_args()

    directory = None
    server = None
    dsn = args.dsn
    if dsn is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            directory = Path(tempfile.mkdtemp(prefix="willow-bench-"))
            server = pgserver.get_server(directory, cleanup_mode="stop")
        dsn = server.get_uri("postgres")
    try:
        _fresh(dsn)
        build_profile()
        print(
            f"machine: {platform.platform()}, {multiprocessing.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, NumPy {np.__version__}"
        )
        base = baseline(dsn, args.baseline)
        print(
            f"baseline (Faker en_GB row by row + executemany): {base:,.0f} customers/s "
            f"over {args.baseline:,} customers"
        )
        formats = copy_formats(dsn, 10)
        for name, (rate, cpu) in formats.items():
            print(
                f"COPY {name} of 10 pre-generated batches of {BATCH_SIZE:,}: best of 3 rounds "
                f"{rate:,.0f} customers/s, client CPU {cpu * 1000:.0f} ms per batch"
            )
        for workers in sorted({1, args.workers}):
            rate, elapsed, pets = v2_workers(dsn, args.customers, workers)
            print(
                f"v2, {workers} worker(s): {args.customers:,} customers + {pets:,} pets in "
                f"{elapsed:.1f} s = {rate:,.0f} customers/s, {rate / base:.1f}x the baseline"
            )
    finally:
        if server is not None and directory is not None:
            _remove_cluster(server, directory)


if __name__ == "__main__":
    main()
