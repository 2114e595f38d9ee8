"""Generated batches in a real PostgreSQL: COPY round trip, run settings, the report command."""

import psycopg
import pytest

from tests.helpers import population_digest
from willow_core.cli import main
from willow_core.config import PopulationSettings
from willow_core.population.generator import GENERATOR_NAME, build_profile, generate_batch
from willow_core.population.worker import run_worker
from willow_core.store import runs
from willow_core.store.db import connect
from willow_core.store.ingest import copy_batch, copy_batch_binary
from willow_core.store.migrations import migrate


def _run(dsn: str, total: int, batch_size: int, settings: PopulationSettings | None) -> runs.Run:
    with connect(dsn, autocommit=True) as conn:
        migrate(conn)
        run = runs.create_run(
            conn,
            total=total,
            batch_size=batch_size,
            seed=99,
            generator=GENERATOR_NAME,
            population=build_profile(settings).describe(),
        )
    assert run_worker(dsn, run.run_id) == "finished"
    return run


def test_copy_round_trip(postgres_dsn: str) -> None:
    batch = generate_batch(4, 2, 1_000, 700)
    with connect(postgres_dsn) as conn:
        migrate(conn)
        copy_batch(conn, batch, 1, 2)
        conn.commit()
        customers = conn.execute(
            "SELECT customer_id, title, first_name, last_name, date_of_birth, email, phone, "
            "address_line1, address_line2, town, postcode, created_at, county, sex "
            "FROM customers ORDER BY customer_id"
        ).fetchall()
        pets = conn.execute(
            "SELECT pet_id, customer_id, name, species, breed, sex, date_of_birth, microchipped, "
            "microchip_number, neutered, pre_existing_conditions FROM pets ORDER BY pet_id"
        ).fetchall()
    assert [tuple(row) for row in customers] == [tuple(row) for row in batch.customers]
    assert [tuple(row) for row in pets] == [tuple(row) for row in batch.pets]


def test_binary_copy_same_rows(make_database) -> None:  # type: ignore[no-untyped-def]
    batches = [generate_batch(8, k, k * 500, 500) for k in range(3)]
    digests = []
    for copy in (copy_batch, copy_batch_binary):
        dsn = make_database()
        with connect(dsn) as conn:
            migrate(conn)
            for k, batch in enumerate(batches):
                copy(conn, batch, 1, k)
            conn.commit()
        digests.append(population_digest(dsn))
    assert digests[0] == digests[1]
    assert digests[0][0] == 1_500


def test_worker_uses_run_settings(postgres_dsn: str) -> None:
    settings = PopulationSettings(pet_owner_share=0.0, email_domains=["post.test"])
    run = _run(postgres_dsn, 2_000, 500, settings)
    with psycopg.connect(postgres_dsn) as conn:
        stored = conn.execute(
            "SELECT population FROM runs WHERE run_id = %s", (run.run_id,)
        ).fetchone()
        pets = conn.execute("SELECT count(*) FROM pets").fetchone()
        domains = conn.execute(
            "SELECT DISTINCT split_part(email, '@', 2) FROM customers"
        ).fetchall()
    assert stored is not None
    assert stored[0]["settings"]["pet_owner_share"] == 0.0
    assert stored[0]["fingerprints"] == build_profile().fingerprints
    assert pets == (0,)
    assert domains == [("post.test",)]


def test_report_command(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    _run(postgres_dsn, 30_000, 10_000, None)
    monkeypatch.setenv("WILLOW_POSTGRES_DSN", postgres_dsn)

    assert main(["report", "distributions", "--sample", "20000"]) == 0
    output = capsys.readouterr().out
    assert "20,000 NPCs sampled from every run" in output
    assert "within tolerance" in output

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE customers SET phone = '07911 123456' WHERE customer_id % 10 = 0")
    assert main(["report", "distributions", "--sample", "20000"]) == 1
    output = capsys.readouterr().out
    assert "FLAGGED" in output
    assert "off target" in output
