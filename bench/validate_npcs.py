"""Measure NPCs/s of quote form validation against the simplest alternative, in one run.

Builds a population in a private PostgreSQL (pgserver), or in the database given by --dsn. One
batch of 10,000 NPCs comes from the generator and copies of it with shifted ids fill the rest, so
building a million NPCs takes seconds. Then, on the population as generated and again after
giving every third NPC an invalid postcode, it times:

- streamed: `Validator.run` over every NPC (chunks read by id range on a second connection while
  the previous chunk is validated, each NPC through the model's pydantic-core validator,
  failures written with COPY in one transaction per chunk);
- row by row: the same reads, then `model_validate` on each NPC's dict and one INSERT per
  failure, the straightforward way to write it;
- validation only (once, with the invalid postcodes): `CompiledForm.validate_one`, which turns
  pydantic's errors into failures with the form's rules and messages, against `model_validate`
  with pydantic's bare `errors()`, on the same in-memory answers.

Usage: .venv/bin/python bench/validate_npcs.py [--npcs 1000000] [--baseline-npcs 100000]
"""

import argparse
import platform
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import ValidationError

from willow_core.population.generator import GENERATOR_NAME, generate_batch
from willow_core.population.models import CUSTOMER_COLUMNS, MAX_PETS_PER_CUSTOMER, PET_COLUMNS
from willow_core.quote_form.spec import load_form_spec
from willow_core.quote_form.validation import Selection, Validator, _Chunk, plan_selection
from willow_core.store import runs
from willow_core.store.db import connect
from willow_core.store.ingest import copy_batch
from willow_core.store.migrations import migrate

AS_OF = date(2026, 12, 4)
SEED_BATCH = 10_000


def build_population(dsn: str, npcs: int) -> None:
    with connect(dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("TRUNCATE customers, pets, validation_runs, milestone_checks, runs CASCADE")
        run = runs.create_run(
            conn, total=npcs, batch_size=SEED_BATCH, seed=1, generator=GENERATOR_NAME
        )
        batch = generate_batch(run.seed, 0, 0, SEED_BATCH)
        with conn.transaction():
            copy_batch(conn, batch, run.run_id, 0)
        customer_columns = [c for c in CUSTOMER_COLUMNS if c != "customer_id"]
        pet_columns = [c for c in PET_COLUMNS if c not in ("pet_id", "customer_id")]
        copy_customers = sql.SQL(
            "INSERT INTO customers (customer_id, run_id, batch_index, {columns}) "
            "SELECT customer_id + %(offset)s, run_id, %(k)s, {columns} FROM customers "
            "WHERE batch_index = 0 AND customer_id + %(offset)s < %(total)s"
        ).format(columns=sql.SQL(", ").join(map(sql.Identifier, customer_columns)))
        copy_pets = sql.SQL(
            "INSERT INTO pets (pet_id, customer_id, {columns}) "
            "SELECT pet_id + %(pet_offset)s, customer_id + %(offset)s, {columns} FROM pets "
            "WHERE customer_id < %(limit)s"
        ).format(columns=sql.SQL(", ").join(map(sql.Identifier, pet_columns)))
        for k in range(1, run.batch_count):
            offset = k * SEED_BATCH
            params = {
                "offset": offset,
                "pet_offset": offset * MAX_PETS_PER_CUSTOMER,
                "k": k,
                "total": npcs,
                "limit": min(SEED_BATCH, npcs - offset),
            }
            with conn.transaction():
                conn.execute(copy_customers, params)
                conn.execute(copy_pets, params)
        conn.execute(
            """
            UPDATE batches SET customers = size, pets = 0, committed_at = now()
            WHERE run_id = %s
            """,
            (run.run_id,),
        )
        conn.execute("VACUUM ANALYZE customers")
        conn.execute("VACUUM ANALYZE pets")


def plant_postcode_faults(dsn: str) -> None:
    """Give every third NPC a postcode that breaks Royal Mail's format."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE customers SET postcode = 'TR3W 5AA' WHERE customer_id % 3 = 0")
        conn.execute("VACUUM ANALYZE customers")


def streamed(dsn: str, chunk_size: int) -> tuple[int, float, int]:
    with connect(dsn, autocommit=True) as conn, connect(dsn, autocommit=True) as read_conn:
        validator = Validator(conn, load_form_spec(), as_of=AS_OF, read_conn=read_conn)
        started = time.perf_counter()
        summary = validator.run(Selection("all"), chunk_size=chunk_size)
        return summary.npcs_checked, time.perf_counter() - started, summary.failures


def row_by_row(dsn: str, npcs: int, chunk_size: int) -> tuple[int, float, int]:
    """Same reads; one model_validate per NPC and one INSERT per failure."""
    with connect(dsn, autocommit=True) as conn:
        validator = Validator(conn, load_form_spec(), as_of=AS_OF)
        form = validator.form
        validation_id = validator._create_run("all", npcs)
        started = time.perf_counter()
        checked = failures = 0
        for first in range(0, npcs, chunk_size):
            chunk = _Chunk(first, min(first + chunk_size, npcs))
            customers, pet_rows = validator._read_chunk(conn, chunk)
            pets_by_customer: dict[int, list[Any]] = {}
            for pet in pet_rows:
                pets_by_customer.setdefault(pet[1], []).append(pet)
            with conn.transaction():
                for customer in customers:
                    pets = pets_by_customer.get(customer[0], [])
                    answers = form.answers(customer[1:], [pet[2:] for pet in pets])
                    try:
                        form.model.model_validate(answers)
                    except ValidationError as error:
                        for detail in error.errors(include_url=False):
                            failures += 1
                            conn.execute(
                                """
                                INSERT INTO validation_failures
                                    (validation_id, customer_id, field, rule, value, message)
                                VALUES (%s, %s, %s, %s, %s, %s)
                                """,
                                (
                                    validation_id,
                                    customer[0],
                                    str(detail["loc"][-1]),
                                    detail["type"],
                                    str(detail["input"]),
                                    detail["msg"],
                                ),
                            )
                    checked += 1
        return checked, time.perf_counter() - started, failures


def validation_only(dsn: str, npcs: int) -> tuple[float, float]:
    """Seconds for validate_one (failures with the form's messages) and for model_validate with
    pydantic's bare errors(), on the same answers."""
    with connect(dsn, autocommit=True) as conn:
        validator = Validator(conn, load_form_spec(), as_of=AS_OF)
        plan = plan_selection([(0, npcs)], Selection("all"), npcs)
        customers, pet_rows = validator._read_chunk(conn, plan.chunks[0])
    form = validator.form
    pets_by_customer: dict[int, list[Any]] = {}
    for pet in pet_rows:
        pets_by_customer.setdefault(pet[1], []).append(pet)
    inputs = [
        form.answers(c[1:], [p[2:] for p in pets_by_customer.get(c[0], [])]) for c in customers
    ]

    started = time.perf_counter()
    for answers in inputs:
        form.validate_one(answers)
    many = time.perf_counter() - started

    started = time.perf_counter()
    for answers in inputs:
        try:
            form.model.model_validate(answers)
        except ValidationError as error:
            error.errors(include_url=False)
    single = time.perf_counter() - started
    return many, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npcs", type=int, default=1_000_000, help="population size")
    parser.add_argument(
        "--baseline-npcs",
        type=int,
        default=100_000,
        help="NPCs the row-by-row baseline validates (it is slow)",
    )
    parser.add_argument("--chunk-size", type=int, default=5_000)
    parser.add_argument("--dsn", help="database to use (it is emptied); default: private pgserver")
    args = parser.parse_args()

    server = None
    if args.dsn:
        dsn = args.dsn
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(
                Path(tempfile.mkdtemp(prefix="willow-bench-")), cleanup_mode="stop"
            )
        dsn = server.get_uri("postgres")

    try:
        started = time.perf_counter()
        build_population(dsn, args.npcs)
        print(f"built {args.npcs:,} NPCs in {time.perf_counter() - started:.1f} s")

        for scenario in ("as generated", "every third postcode invalid"):
            if scenario != "as generated":
                plant_postcode_faults(dsn)
            npcs, seconds, failures = streamed(dsn, args.chunk_size)
            print(
                f"[{scenario}] streamed: {npcs:,} NPCs in {seconds:.1f} s = "
                f"{npcs / seconds:,.0f} NPCs/s ({failures:,} failures)"
            )
            npcs, seconds, failures = row_by_row(dsn, args.baseline_npcs, args.chunk_size)
            print(
                f"[{scenario}] row by row: {npcs:,} NPCs in {seconds:.1f} s = "
                f"{npcs / seconds:,.0f} NPCs/s ({failures:,} failures)"
            )

        count = min(args.baseline_npcs, 50_000)
        many, single = validation_only(dsn, count)
        print(
            f"validation only, {count:,} NPCs: validate_one with the form's messages "
            f"{count / many:,.0f} NPCs/s, model_validate per NPC with bare errors() "
            f"{count / single:,.0f} NPCs/s"
        )
        print(
            f"python {platform.python_version()}, {platform.machine()}, "
            f"PostgreSQL {psycopg.connect(dsn).info.server_version}"
        )
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
