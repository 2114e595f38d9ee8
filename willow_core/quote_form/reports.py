"""Reading the validation log: failures, counts, field coverage and single NPC records."""

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from willow_core.errors import WillowError
from willow_core.population.generator import generate_batch, profile_from_run
from willow_core.population.models import CUSTOMER_COLUMNS, PET_COLUMNS, CustomerRow, PetRow
from willow_core.quote_form.compiler import CompiledForm, Failure
from willow_core.quote_form.postcode import normalise_postcode
from willow_core.quote_form.spec import SECTIONS, FieldSpec, FormSpec
from willow_core.store.db import wrap_errors

log = logging.getLogger("willow.quote_form.reports")

STALE_AFTER = timedelta(minutes=2)
"""A validation still marked running without a chunk written for this long was interrupted."""


class NpcNotFoundError(WillowError):
    title = "NPC not found"


@dataclass(frozen=True)
class ValidationRun:
    validation_id: int
    mode: str
    selected: int
    form_name: str
    form_version: int
    form_fingerprint: str
    as_of: date
    state: str
    npcs_checked: int
    npcs_failed: int
    pets_checked: int
    failures: int
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None
    now: datetime

    @property
    def shown_state(self) -> str:
        """The state, with a run that stopped writing long ago shown as "interrupted"."""
        if self.state == "running" and self.now - self.updated_at > STALE_AFTER:
            return "interrupted"
        return self.state


@dataclass(frozen=True)
class FailureRow:
    failure_id: int
    validation_id: int
    customer_id: int
    pet_id: int | None
    field: str
    rule: str
    value: str | None
    message: str
    as_of: date
    """The day the failing validation counted ages from."""


@dataclass(frozen=True)
class FailureCount:
    field: str
    rule: str
    failures: int


@dataclass(frozen=True)
class FailureLog:
    latest: ValidationRun | None
    rows: list[FailureRow]
    """Failures of every validation, newest first, filtered and limited."""
    counts: list[FailureCount]
    """Failures of the latest validation by field and rule, most frequent first."""


_RUN_QUERY = """
    SELECT validation_id, mode, selected, form_name, form_version, form_fingerprint, as_of,
           state, npcs_checked, npcs_failed, pets_checked, failures, started_at, updated_at,
           finished_at, error, now() AS now
    FROM validation_runs
"""


def latest_validation(
    conn: psycopg.Connection, fingerprint: str | None = None
) -> ValidationRun | None:
    """Return the newest validation run, or the newest with a given form fingerprint."""
    with wrap_errors("reading validation runs"):
        cursor = conn.cursor(row_factory=class_row(ValidationRun))
        if fingerprint is None:
            return cursor.execute(_RUN_QUERY + " ORDER BY validation_id DESC LIMIT 1").fetchone()
        return cursor.execute(
            _RUN_QUERY + " WHERE form_fingerprint = %s ORDER BY validation_id DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()


def read_failure_log(
    conn: psycopg.Connection, *, filter_text: str = "", limit: int = 500
) -> FailureLog:
    """Return the newest failures (matching `filter_text` in NPC id, field, rule, value or
    message) and the latest validation's counts by field and rule."""
    latest = latest_validation(conn)
    text = filter_text.strip()
    with wrap_errors("reading the failure log"):
        cursor = conn.cursor(row_factory=class_row(FailureRow))
        base = """
            SELECT f.failure_id, f.validation_id, f.customer_id, f.pet_id, f.field, f.rule,
                   f.value, f.message, r.as_of
            FROM validation_failures f JOIN validation_runs r USING (validation_id)
        """
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = cursor.execute(
                base
                + """
                WHERE f.field ILIKE %(p)s OR f.rule ILIKE %(p)s OR f.value ILIKE %(p)s
                   OR f.message ILIKE %(p)s OR f.customer_id::text = %(t)s
                ORDER BY f.failure_id DESC LIMIT %(limit)s
                """,
                {"p": pattern, "t": text, "limit": limit},
            ).fetchall()
        else:
            rows = cursor.execute(
                base + " ORDER BY f.failure_id DESC LIMIT %(limit)s", {"limit": limit}
            ).fetchall()

        counts: list[FailureCount] = []
        if latest is not None:
            counts = (
                conn.cursor(row_factory=class_row(FailureCount))
                .execute(
                    """
                SELECT field, rule, failures FROM validation_rule_counts
                WHERE validation_id = %s ORDER BY failures DESC, field, rule
                """,
                    (latest.validation_id,),
                )
                .fetchall()
            )
    return FailureLog(latest, rows, counts)


@dataclass(frozen=True)
class FieldCoverage:
    name: str
    label: str
    section: str
    required: bool
    source: str | None
    """Population columns, "default …" for a pre-filled answer, or None with no source."""
    checked: int
    valid: int

    @property
    def share(self) -> float | None:
        """Share of checked NPCs (or pets) that fill the field validly; None when none were."""
        return self.valid / self.checked if self.checked else None


@dataclass(frozen=True)
class CoverageReport:
    form: str
    validation: ValidationRun | None
    """The validation the shares come from: the newest made with this exact form file."""
    fields: list[FieldCoverage]

    @property
    def uncovered(self) -> list[FieldCoverage]:
        return [field for field in self.fields if field.source is None]


def coverage_report(conn: psycopg.Connection, spec: FormSpec) -> CoverageReport:
    """Return each field's source and the share of NPCs that filled it validly in the newest
    validation made with this form file (no shares when there is none)."""
    validation = latest_validation(conn, spec.fingerprint)
    stats: dict[str, tuple[int, int]] = {}
    if validation is not None:
        with wrap_errors("reading field coverage"):
            rows = conn.execute(
                "SELECT field, checked, valid FROM validation_field_stats WHERE validation_id = %s",
                (validation.validation_id,),
            ).fetchall()
        stats = {name: (int(checked), int(valid)) for name, checked, valid in rows}

    fields = []
    for spec_field in spec.fields:
        source = spec.mapping.get(spec_field.name)
        if source is not None:
            described: str | None = source.describe()
        elif spec_field.default is not None:
            described = f"default {spec_field.default!r}"
        else:
            described = None
        checked, valid = stats.get(spec_field.name, (0, 0))
        if described is None:
            valid = 0  # an optional field with no source passes, but no NPC fills it
        fields.append(
            FieldCoverage(
                spec_field.name,
                spec_field.label,
                spec_field.section,
                spec_field.required,
                described,
                checked,
                valid,
            )
        )
    return CoverageReport(spec.label, validation, fields)


@dataclass(frozen=True)
class FilledField:
    """One answer of the quote form as an NPC fills it."""

    section: str
    pet_id: int | None
    name: str
    label: str
    value: Any
    failures: list[Failure]
    normalised: str | None = None
    """The answer as the form stores it, when normalising changes it (postcodes)."""

    @property
    def valid(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Regeneration:
    """How to regenerate an NPC: its run's seed and its batch."""

    run_id: int
    seed: int
    generator: str
    batch_index: int
    batch_first_customer_id: int
    batch_size: int
    offset: int
    """Position of the NPC in its batch."""
    population: dict[str, Any] | None = None
    """The run's stored population profile (`runs.population`); None for the default one."""

    def describe(self) -> str:
        last = self.batch_first_customer_id + self.batch_size - 1
        return (
            f"run {self.run_id} · seed {self.seed} · batch {self.batch_index} "
            f"(customers {self.batch_first_customer_id:,}-{last:,}) · position {self.offset} "
            f"· generator {self.generator}"
        )

    def call(self) -> str:
        """Return the Python call that regenerates the NPC."""
        profile = "" if self.population is None else ", profile_from_run(population)"
        call = (
            f"generate_batch({self.seed}, {self.batch_index}, {self.batch_first_customer_id}, "
            f"{self.batch_size}{profile}).customers[{self.offset}]"
        )
        if self.population is not None:
            call += f"  # population = runs.population of run {self.run_id}"
        return call

    def regenerate(self) -> tuple[CustomerRow, list[PetRow]]:
        """Regenerate the NPC and its pets with the current generator and the run's profile.

        Raises:
            ConfigError: this host's reference tables differ from the run's.
        """
        batch = generate_batch(
            self.seed,
            self.batch_index,
            self.batch_first_customer_id,
            self.batch_size,
            profile_from_run(self.population),
        )
        customer = batch.customers[self.offset]
        return customer, [pet for pet in batch.pets if pet.customer_id == customer.customer_id]


@dataclass(frozen=True)
class NpcRecord:
    customer: dict[str, Any]
    pets: list[dict[str, Any]]
    form: str
    as_of: date
    answers: list[FilledField]
    regeneration: Regeneration | None
    """None when the NPC's run or batch row is gone."""

    @property
    def failures(self) -> list[Failure]:
        return [failure for answer in self.answers for failure in answer.failures]


_CUSTOMER_QUERY = sql.SQL(
    "SELECT {}, run_id, batch_index FROM customers WHERE customer_id = %s"
).format(sql.SQL(", ").join(map(sql.Identifier, CUSTOMER_COLUMNS)))
_PETS_QUERY = sql.SQL("SELECT {} FROM pets WHERE customer_id = %s ORDER BY pet_id").format(
    sql.SQL(", ").join(map(sql.Identifier, PET_COLUMNS))
)


def load_npc_record(conn: psycopg.Connection, form: CompiledForm, customer_id: int) -> NpcRecord:
    """Read one NPC with its pets, fill the quote form with it and validate every answer.

    Raises:
        NpcNotFoundError: no customer has this id.
    """
    with wrap_errors(f"reading NPC {customer_id}"):
        cursor = conn.cursor(row_factory=dict_row)
        customer = cursor.execute(_CUSTOMER_QUERY, (customer_id,)).fetchone()
        if customer is None:
            raise NpcNotFoundError(
                f"NPC {customer_id} not found; it may belong to a batch that is not committed"
            )
        pets = cursor.execute(_PETS_QUERY, (customer_id,)).fetchall()
        batch = conn.execute(
            """
            SELECT r.run_id, r.seed, r.generator, b.batch_index, b.first_customer_id, b.size,
                   r.population
            FROM batches b JOIN runs r USING (run_id)
            WHERE b.run_id = %s AND b.batch_index = %s
            """,
            (customer["run_id"], customer["batch_index"]),
        ).fetchone()

    regeneration = None
    if batch is not None:
        run_id, seed, generator, batch_index, first, size, population = batch
        regeneration = Regeneration(
            run_id, seed, generator, batch_index, first, size, customer_id - first, population
        )

    answers = form.answers(
        [customer[column] for column in form.customer_columns],
        [[pet[column] for column in form.pet_columns] for pet in pets],
    )
    failures = form.validate_one(answers)
    return NpcRecord(
        customer=customer,
        pets=pets,
        form=form.spec.label,
        as_of=form.as_of,
        answers=_filled_fields(form, answers, pets, failures),
        regeneration=regeneration,
    )


def _filled_fields(
    form: CompiledForm,
    answers: dict[str, Any],
    pets: list[dict[str, Any]],
    failures: list[Failure],
) -> list[FilledField]:
    by_place: dict[tuple[str, int | None, str], list[Failure]] = {}
    for failure in failures:
        by_place.setdefault((failure.section, failure.pet_index, failure.field), []).append(failure)

    def normalised(spec: FieldSpec, value: Any) -> str | None:
        if spec.type != "uk_postcode" or not isinstance(value, str):
            return None
        stored = normalise_postcode(value)
        return stored if stored != value else None

    filled = []
    for section in SECTIONS:
        fields = form.spec.section_fields(section)
        if section == "pet":
            for index, pet in enumerate(pets):
                for spec in fields:
                    value = answers["pets"][index].get(spec.name)
                    filled.append(
                        FilledField(
                            section,
                            pet["pet_id"],
                            spec.name,
                            spec.label,
                            value,
                            by_place.get((section, index, spec.name), []),
                            normalised(spec, value),
                        )
                    )
            continue
        for spec in fields:
            value = answers.get(section, {}).get(spec.name)
            filled.append(
                FilledField(
                    section,
                    None,
                    spec.name,
                    spec.label,
                    value,
                    by_place.get((section, None, spec.name), []),
                    normalised(spec, value),
                )
            )
    return filled
