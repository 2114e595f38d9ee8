"""Population milestones and the check that belongs to each.

As the population grows past 1K, 10K, 100K, 1M and 10M NPCs, one more check has to pass before
the population is trusted at that size. Every run of a check is a row in `milestone_checks`, so
any part of Willow (validation, journeys, a stress script) records its result with
`record_check` and the control room shows the latest result per check.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg

from willow_core.store.db import wrap_errors

log = logging.getLogger("willow.milestones")


class Check(StrEnum):
    SCHEMA = "schema_compatibility"
    COVERAGE = "form_field_coverage"
    QUOTES_AT_SCALE = "quote_generation_at_scale"
    CLAIM_JOURNEY = "claim_journey"
    STRESS = "stress"


@dataclass(frozen=True)
class Milestone:
    population: int
    """NPCs the population must reach for this milestone."""
    check: Check
    title: str
    description: str


MILESTONES: tuple[Milestone, ...] = (
    Milestone(
        1_000,
        Check.SCHEMA,
        "Schema compatibility",
        "every population column the quote form maps exists with a compatible type",
    ),
    Milestone(
        10_000,
        Check.COVERAGE,
        "Form field coverage",
        "every required field has a source, and a validation of at least 10,000 NPCs (or all of "
        "them) finds every NPC fills every field validly",
    ),
    Milestone(
        100_000,
        Check.QUOTES_AT_SCALE,
        "Quote generation at scale",
        "quotes are generated for a sample of 100,000 NPCs",
    ),
    Milestone(
        1_000_000,
        Check.CLAIM_JOURNEY,
        "Claim journey",
        "sampled NPCs complete pet acquired, quote, policy and claim",
    ),
    # TODO: nothing records the stress check yet; bench/bench_10m.py measures it by hand.
    Milestone(
        10_000_000,
        Check.STRESS,
        "Stress",
        "validation, sampling and journeys keep their throughput at 10 million NPCs",
    ),
)


@dataclass(frozen=True)
class CheckResult:
    check: Check
    passed: bool
    population: int
    """Size of the population when the check ran."""
    detail: str
    ran_at: datetime


@dataclass(frozen=True)
class MilestoneStatus:
    milestone: Milestone
    reached: bool
    latest: CheckResult | None
    """The latest run of the milestone's check; None when it has never run."""

    @property
    def state(self) -> str:
        """ "passed", "failed" or "not run"."""
        if self.latest is None:
            return "not run"
        return "passed" if self.latest.passed else "failed"


def population_size(conn: psycopg.Connection) -> int:
    """Return the number of committed NPCs, summed from the batch rows of every run."""
    with wrap_errors("reading the population size"):
        row = conn.execute(
            "SELECT coalesce(sum(customers), 0) FROM batches WHERE committed_at IS NOT NULL"
        ).fetchone()
    assert row is not None
    return int(row[0])


def record_check(
    conn: psycopg.Connection, check: Check, *, passed: bool, detail: str, population: int
) -> None:
    """Record one run of a milestone check."""
    with wrap_errors(f"recording the {check} check"):
        conn.execute(
            """
            INSERT INTO milestone_checks (check_name, passed, population, detail)
            VALUES (%s, %s, %s, %s)
            """,
            (str(check), passed, population, detail),
        )
    log.info("milestone check %s %s: %s", check, "passed" if passed else "failed", detail)


def milestone_statuses(conn: psycopg.Connection) -> tuple[int, list[MilestoneStatus]]:
    """Return the population size and, for every milestone, whether it is reached and how its
    check last went."""
    population = population_size(conn)
    with wrap_errors("reading milestone checks"):
        rows = conn.execute(
            """
            SELECT DISTINCT ON (check_name) check_name, passed, population, detail, ran_at
            FROM milestone_checks
            ORDER BY check_name, check_run_id DESC
            """
        ).fetchall()
    latest: dict[str, CheckResult] = {}
    for check_name, passed, checked_population, detail, ran_at in rows:
        if check_name in Check.__members__.values():
            latest[check_name] = CheckResult(
                Check(check_name), passed, int(checked_population), detail, ran_at
            )
    statuses = [
        MilestoneStatus(
            milestone=milestone,
            reached=population >= milestone.population,
            latest=latest.get(str(milestone.check)),
        )
        for milestone in MILESTONES
    ]
    return population, statuses
