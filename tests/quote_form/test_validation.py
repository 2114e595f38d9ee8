"""Validation of NPCs streamed from a real PostgreSQL, with failures logged there."""

from datetime import date

import psycopg
import pytest

from tests.quote_form.conftest import (
    AS_OF,
    form_with_extra,
    generate_population,
    settings_with_form,
)
from willow_core.config import Settings
from willow_core.control import ControlRoom
from willow_core.milestones import Check
from willow_core.quote_form.postcode import normalise_postcode, postcode_problem
from willow_core.quote_form.service import QuoteFormService
from willow_core.quote_form.spec import QuoteFormError
from willow_core.quote_form.validation import Selection
from willow_core.store.runs import Run


def _plant_faults(dsn: str) -> dict[str, int]:
    """Break four NPCs in four ways; return which NPC carries which fault."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        chipped = conn.execute(
            "SELECT pet_id, customer_id FROM pets WHERE microchipped ORDER BY pet_id LIMIT 1"
        ).fetchone()
        assert chipped is not None
        pet_id, chip_owner = chipped
        others = [
            customer_id
            for (customer_id,) in conn.execute(
                "SELECT customer_id FROM customers WHERE customer_id <> %s "
                "ORDER BY customer_id LIMIT 3",
                (chip_owner,),
            ).fetchall()
        ]
        postcode_npc, email_npc, minor_npc = others
        conn.execute(
            "UPDATE customers SET postcode = 'TR3W 5AA' WHERE customer_id = %s", (postcode_npc,)
        )
        conn.execute("UPDATE customers SET email = '' WHERE customer_id = %s", (email_npc,))
        conn.execute(
            "UPDATE customers SET date_of_birth = %s WHERE customer_id = %s",
            (date(2011, 6, 1), minor_npc),
        )
        conn.execute(
            "UPDATE pets SET microchip_number = '82612345678' WHERE pet_id = %s", (pet_id,)
        )
    return {
        "postcode": postcode_npc,
        "email": email_npc,
        "minor": minor_npc,
        "chip_owner": chip_owner,
        "pet": pet_id,
    }


def test_planted_faults_exactly(
    clean_population: Run, postgres_dsn: str, service: QuoteFormService
) -> None:
    planted = _plant_faults(postgres_dsn)

    summary = service.validate(Selection("all"), as_of=AS_OF)

    assert summary.state == "finished"
    assert summary.npcs_checked == 600
    assert summary.npcs_failed == 4
    assert summary.failures == 4
    log = service.failure_log()
    found = {
        (row.customer_id, row.pet_id, row.field, row.rule, row.value, row.message)
        for row in log.rows
    }
    assert found == {
        (
            planted["postcode"],
            None,
            "postcode",
            "uk_postcode",
            "TR3W 5AA",
            "district TR3W ends in a letter, which only central London districts "
            "(EC1-EC4, SW1, W1, WC1, WC2, E1W, N1C, N1P, NW1W, SE1P) do",
        ),
        (planted["email"], None, "email", "required", "", "Email address is required"),
        (
            planted["minor"],
            None,
            "date_of_birth",
            "min_age_years",
            "2011-06-01",
            "the policyholder must be 18 or over (born 2011-06-01)",
        ),
        (
            planted["chip_owner"],
            planted["pet"],
            "pet_microchip_number",
            "pattern",
            "82612345678",
            "a microchip number has 15 digits; 82612345678 has 11",
        ),
    }


def test_clean_population_passes(
    clean_population: Run, service: QuoteFormService, postgres_dsn: str
) -> None:
    summary = service.validate(Selection("all"), as_of=AS_OF)

    assert summary.npcs_failed == 0
    assert summary.failures == 0
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute(
            "SELECT passed FROM milestone_checks WHERE check_name = %s "
            "ORDER BY check_run_id DESC LIMIT 1",
            (str(Check.COVERAGE),),
        ).fetchone()
    assert row == (True,)


def test_cross_field_rules(
    clean_population: Run, postgres_dsn: str, service: QuoteFormService
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        chipped = conn.execute(
            "SELECT pet_id FROM pets WHERE microchipped ORDER BY pet_id LIMIT 1"
        ).fetchone()
        unchipped = conn.execute(
            "SELECT pet_id FROM pets WHERE NOT microchipped ORDER BY pet_id LIMIT 1"
        ).fetchone()
        assert chipped is not None and unchipped is not None
        conn.execute("UPDATE pets SET microchip_number = NULL WHERE pet_id = %s", chipped)
        conn.execute(
            "UPDATE pets SET microchip_number = '826000000000001' WHERE pet_id = %s", unchipped
        )

    service.validate(Selection("all"), as_of=AS_OF)

    rows = {(row.pet_id, row.rule, row.message) for row in service.failure_log().rows}
    assert rows == {
        (chipped[0], "required_if", "a microchipped pet needs its microchip number"),
        (
            unchipped[0],
            "empty_unless",
            "a microchip number was given for a pet marked as not microchipped",
        ),
    }


def test_added_required_field_uncovered(
    clean_population: Run, settings: Settings, tmp_path
) -> None:
    extra = """
[[fields]]
name = "annual_mileage"
section = "policyholder"
label = "Annual mileage walking the dog"
type = "integer"
required = true
"""
    path = form_with_extra(tmp_path, extra)
    room = ControlRoom(settings_with_form(settings, path))
    service = QuoteFormService(room)
    try:
        summary = service.validate(Selection("all"), as_of=AS_OF)
        coverage = service.coverage()
        log = service.failure_log(limit=1_000)
    finally:
        room.close()

    assert [field.name for field in coverage.uncovered] == ["pet_purchase_price", "annual_mileage"]
    mileage = next(field for field in coverage.fields if field.name == "annual_mileage")
    assert mileage.required
    assert mileage.share == 0.0
    assert summary.npcs_failed == 600
    assert summary.failures_by_field == {"annual_mileage": 600}
    assert {(row.field, row.rule, row.message) for row in log.rows} == {
        (
            "annual_mileage",
            "required",
            "Annual mileage walking the dog is required, but no population column maps to it",
        )
    }
    assert log.counts[0].field == "annual_mileage"
    assert log.counts[0].failures == 600


def test_edited_form_changes_validation(
    clean_population: Run, settings: Settings, tmp_path
) -> None:
    path = form_with_extra(tmp_path, "")
    room = ControlRoom(settings_with_form(settings, path))
    service = QuoteFormService(room)
    try:
        assert service.validate(Selection("all"), as_of=AS_OF).npcs_failed == 0
        text = path.read_text().replace('"Mx", "Dr"]', '"Mx"]')
        path.write_text(text)
        summary = service.validate(Selection("all"), as_of=AS_OF)
    finally:
        room.close()

    assert summary.failures_by_field.keys() == {"title"}
    assert summary.failures_by_field["title"] == summary.npcs_failed > 0


def test_failure_shares_in_coverage(faulty_population: Run, service: QuoteFormService) -> None:
    summary = service.validate(Selection("all"), as_of=AS_OF)

    coverage = {field.name: field for field in service.coverage().fields}
    assert summary.failures_by_field == {"postcode": 200, "address_line1": 120}
    assert summary.npcs_failed == 200 + 120 - 40
    assert coverage["postcode"].checked == 600
    assert coverage["postcode"].valid == 400
    assert coverage["address_line1"].valid == 480
    assert coverage["email"].share == 1.0
    assert coverage["pet_name"].checked == summary.pets_checked > 0
    assert coverage["pet_purchase_price"].source is None
    assert coverage["pet_purchase_price"].share == 0.0
    assert (
        coverage["full_name"].source
        == "customers.title + customers.first_name + customers.last_name"
    )
    assert coverage["cover_level"].source == "default 'lifetime'"


def test_sample_draws_distinct_committed_ids(postgres_dsn: str, service: QuoteFormService) -> None:
    run = generate_population(postgres_dsn, 1_000, 100, 3)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        # An uncommitted batch in the middle: its ids must never be sampled.
        conn.execute("DELETE FROM customers WHERE batch_index = 4")
        conn.execute(
            "UPDATE batches SET committed_at = NULL, customers = NULL "
            "WHERE run_id = %s AND batch_index = 4",
            (run.run_id,),
        )

    summary = service.validate(Selection("sample", sample_size=300, seed=11), as_of=AS_OF)

    assert summary.npcs_checked == 300
    everything = service.validate(Selection("sample", sample_size=5_000, seed=1), as_of=AS_OF)
    assert everything.npcs_checked == 900


def test_ids_selection_reports_missing(population: Run, service: QuoteFormService) -> None:
    summary = service.validate(Selection("ids", ids=(5, 5, 17, 599, 600, 10_000)), as_of=AS_OF)

    assert summary.npcs_checked == 3
    assert summary.missing_ids == (600, 10_000)


def test_log_survives_restart(faulty_population: Run, settings: Settings) -> None:
    first = ControlRoom(settings)
    try:
        summary = QuoteFormService(first).validate(Selection("all"), as_of=AS_OF)
    finally:
        first.close()

    second = ControlRoom(settings)
    try:
        log = QuoteFormService(second).failure_log(limit=10_000)
    finally:
        second.close()

    assert log.latest is not None
    assert log.latest.validation_id == summary.validation_id
    assert log.latest.shown_state == "finished"
    assert len(log.rows) == summary.failures
    assert [row.failure_id for row in log.rows] == sorted(
        (row.failure_id for row in log.rows), reverse=True
    )
    assert sum(count.failures for count in log.counts) == summary.failures


def test_cancel_keeps_finished_chunks(
    faulty_population: Run, settings: Settings, service: QuoteFormService
) -> None:
    calls = []

    def stop_after_first_chunk() -> bool:
        calls.append(1)
        return len(calls) > 1

    small = settings.model_copy(
        update={"quote_form": settings.quote_form.model_copy(update={"chunk_size": 100})}
    )
    room = ControlRoom(small)
    try:
        summary = QuoteFormService(room).validate(
            Selection("all"), as_of=AS_OF, should_stop=stop_after_first_chunk
        )
        log = QuoteFormService(room).failure_log(limit=10_000)
    finally:
        room.close()

    assert summary.state == "cancelled"
    assert summary.npcs_checked == 100
    assert log.latest is not None
    assert log.latest.state == "cancelled"
    assert log.latest.npcs_checked == 100
    assert len(log.rows) == summary.failures > 0


def test_filter_matches_field_value_and_id(
    faulty_population: Run, service: QuoteFormService
) -> None:
    service.validate(Selection("all"), as_of=AS_OF)
    every = service.failure_log(limit=10_000).rows
    postcode_rows = [row for row in every if row.field == "postcode"]

    by_field = service.failure_log("postcode", limit=10_000).rows
    by_id = service.failure_log(str(postcode_rows[0].customer_id), limit=10_000).rows
    wildcard = service.failure_log("%", limit=10_000).rows

    assert {row.failure_id for row in by_field} >= {row.failure_id for row in postcode_rows}
    assert {row.customer_id for row in by_id} == {postcode_rows[0].customer_id}
    assert wildcard == []


def test_npc_record_and_regeneration(
    clean_population: Run, postgres_dsn: str, service: QuoteFormService
) -> None:
    planted = _plant_faults(postgres_dsn)

    record = service.npc_record(planted["chip_owner"], AS_OF)

    assert record.customer["customer_id"] == planted["chip_owner"]
    assert [failure.field for failure in record.failures] == ["pet_microchip_number"]
    failing = [answer for answer in record.answers if not answer.valid]
    assert [(answer.pet_id, answer.name) for answer in failing] == [
        (planted["pet"], "pet_microchip_number")
    ]
    names = [answer.name for answer in record.answers if answer.pet_id is None]
    assert names[:3] == ["title", "first_name", "last_name"]
    postcode = next(answer for answer in record.answers if answer.name == "postcode")
    assert postcode.value == "SW1A 1AA"
    assert postcode.normalised is None
    full_name = next(answer for answer in record.answers if answer.name == "full_name")
    customer = record.customer
    assert (
        full_name.value == f"{customer['title']} {customer['first_name']} {customer['last_name']}"
    )

    regeneration = record.regeneration
    assert regeneration is not None
    assert regeneration.seed == 7
    regenerated, pets = regeneration.regenerate()
    assert regenerated.customer_id == customer["customer_id"]
    assert regenerated.first_name == customer["first_name"]
    assert regenerated.email == customer["email"]
    assert [pet.pet_id for pet in pets] == [pet["pet_id"] for pet in record.pets]


def test_schema_mismatch_rejected(
    population: Run, postgres_dsn: str, service: QuoteFormService
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE customers RENAME COLUMN phone TO telephone")

    with pytest.raises(QuoteFormError, match=r"phone: column customers\.phone does not exist"):
        service.validate(Selection("all"), as_of=AS_OF)

    _, statuses = service.milestones()
    schema = statuses[0]
    assert schema.milestone.check is Check.SCHEMA
    assert schema.state == "failed"


def test_milestones_report(faulty_population: Run, service: QuoteFormService) -> None:
    population_size, before = service.milestones()
    service.validate(Selection("all"), as_of=AS_OF)
    _, after = service.milestones()

    assert population_size == 600
    assert [status.state for status in before] == ["not run"] * 5
    assert [status.reached for status in after] == [False] * 5
    assert [status.state for status in after] == [
        "passed",
        "failed",
        "not run",
        "not run",
        "not run",
    ]
    coverage = after[1].latest
    assert coverage is not None
    assert "postcode" in coverage.detail


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("sw1a1aa", "SW1A 1AA"), ("  ec1v   9hq ", "EC1V 9HQ"), ("M1 1AA", "M1 1AA"), ("ab", "AB")],
)
def test_postcode_normalised(raw: str, normalised: str) -> None:
    assert normalise_postcode(raw) == normalised


@pytest.mark.parametrize(
    "postcode",
    [
        "SW1A 1AA",
        "EC1V 9HQ",
        "W1A 1HQ",
        "M1 1AA",
        "B33 8TH",
        "CR2 6XH",
        "DN55 1PT",
        "CR0 2YR",
        "AB10 1XG",
        "E1W 1AA",
        "N1C 4AA",
        "NW1W 7AA",
        "SE1P 5LX",
        "GY1 1AA",
        "BT1 5GS",
    ],
)
def test_postcode_valid(postcode: str) -> None:
    assert postcode_problem(postcode) is None


@pytest.mark.parametrize(
    ("postcode", "reason"),
    [
        ("TR3W 5AA", "only central London districts"),
        ("QA1 1AA", "not a UK postcode area"),
        ("B05 1AA", "leading zero"),
        ("TR0 1AA", "has no district 0"),
        ("AB1 1AA", "only two-digit districts"),
        ("HD12 1AA", "only one-digit districts"),
        ("SW1 1AA", "always followed by a letter"),
        ("E1X 1AA", "only divided into E1W"),
        ("W1Z 1AA", "never ends a district"),
        ("M1 1CA", "never include C I K M O V"),
        ("SW1A1AA", "not shaped like a UK postcode"),
        ("12345", "not shaped like a UK postcode"),
    ],
)
def test_postcode_invalid(postcode: str, reason: str) -> None:
    problem = postcode_problem(postcode)
    assert problem is not None
    assert reason in problem
