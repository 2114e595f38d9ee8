"""Validate NPCs from PostgreSQL against a compiled quote form and log the failures.

NPCs are read in chunks of consecutive customer ids (`--all`) or of sorted sampled ids, each
chunk with one query for customers and one for their pets. A chunk is validated with one
pydantic-core call, and its failures, per-field counts and run counters are written in one
transaction with COPY. So an interrupted validation keeps every chunk it finished, and the log
survives restarts.

A sample is drawn from the committed batches' id ranges (customers of a batch have consecutive
ids) with NumPy, then read by id, never with `ORDER BY random()` over the population. Exact-size
`TABLESAMPLE SYSTEM_ROWS` needs the tsm_system_rows extension, which the pgserver build
(0.1.4) does not ship.
"""

import bisect
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
import psycopg
from psycopg import sql

from willow_core.milestones import Check, population_size, record_check
from willow_core.quote_form.compiler import CompiledForm
from willow_core.quote_form.spec import FormSpec, QuoteFormError
from willow_core.store.db import wrap_errors

log = logging.getLogger("willow.quote_form.validation")

Mode = Literal["sample", "all", "ids"]

COVERAGE_CHECK_MIN_NPCS = 10_000
"""NPCs a validation must cover (or the whole population, if smaller) to settle the coverage
milestone."""

_READ_AHEAD = 2
"""Chunks the reader thread may hold ready before the validating thread takes them."""

_COMPATIBLE_TYPES = {
    "text": {"text", "character varying", "character"},
    "uk_postcode": {"text", "character varying", "character"},
    "choice": {"text", "character varying", "character"},
    "date": {"date"},
    "boolean": {"boolean"},
    "integer": {"smallint", "integer", "bigint"},
    "decimal": {"numeric", "smallint", "integer", "bigint", "real", "double precision"},
}
"""PostgreSQL column types each form field type can be filled from."""


@dataclass(frozen=True)
class Selection:
    """The NPCs a validation covers."""

    mode: Mode
    sample_size: int = 0
    ids: tuple[int, ...] = ()
    seed: int | None = None
    """Seed of the sample; None draws a fresh one."""


@dataclass(frozen=True)
class _Chunk:
    first_id: int
    end_id: int
    """One past the last id of a range chunk."""
    ids: list[int] | None = None
    """Explicit ids; None means every id in [first_id, end_id)."""

    @property
    def size(self) -> int:
        return len(self.ids) if self.ids is not None else self.end_id - self.first_id


@dataclass(frozen=True)
class ValidationPlan:
    chunks: tuple[_Chunk, ...]
    total: int
    missing_ids: tuple[int, ...] = ()
    """Requested ids that no committed batch holds."""


@dataclass(frozen=True)
class ValidationProgress:
    validation_id: int
    done: int
    total: int
    npcs_failed: int
    failures: int
    elapsed: float

    @property
    def rate(self) -> float:
        """NPCs validated per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class ValidationSummary:
    validation_id: int
    state: str
    npcs_checked: int
    npcs_failed: int
    pets_checked: int
    failures: int
    elapsed: float
    missing_ids: tuple[int, ...] = ()
    failures_by_field: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.npcs_checked / self.elapsed if self.elapsed > 0 else 0.0


def committed_ranges(conn: psycopg.Connection) -> list[tuple[int, int]]:
    """Return the committed customer id ranges as (first id, count), merged and sorted by id."""
    with wrap_errors("reading committed batches"):
        rows = conn.execute(
            """
            SELECT first_customer_id, customers FROM batches
            WHERE committed_at IS NOT NULL AND customers > 0
            ORDER BY first_customer_id
            """
        ).fetchall()
    merged: list[tuple[int, int]] = []
    for first, count in rows:
        if merged and merged[-1][0] + merged[-1][1] == first:
            merged[-1] = (merged[-1][0], merged[-1][1] + int(count))
        else:
            merged.append((int(first), int(count)))
    return merged


def plan_selection(
    ranges: Sequence[tuple[int, int]], selection: Selection, chunk_size: int
) -> ValidationPlan:
    """Turn a selection into chunks of customer ids, using only committed id ranges."""
    total_population = sum(count for _, count in ranges)

    if selection.mode == "all":
        chunks = []
        for first, count in ranges:
            for start in range(first, first + count, chunk_size):
                chunks.append(_Chunk(start, min(start + chunk_size, first + count)))
        return ValidationPlan(tuple(chunks), total_population)

    if selection.mode == "ids":
        starts = [first for first, _ in ranges]
        found: list[int] = []
        missing: list[int] = []
        for customer_id in sorted(set(selection.ids)):
            position = bisect.bisect_right(starts, customer_id) - 1
            inside = position >= 0 and customer_id < ranges[position][0] + ranges[position][1]
            (found if inside else missing).append(customer_id)
        return ValidationPlan(_id_chunks(found, chunk_size), len(found), tuple(missing))

    size = min(selection.sample_size, total_population)
    if size <= 0:
        return ValidationPlan((), 0)
    rng = np.random.default_rng(selection.seed)
    positions = np.sort(rng.choice(total_population, size=size, replace=False))
    firsts = np.array([first for first, _ in ranges], dtype=np.int64)
    offsets = np.cumsum([0] + [count for _, count in ranges[:-1]], dtype=np.int64)
    which = np.searchsorted(offsets, positions, side="right") - 1
    ids = (firsts[which] + positions - offsets[which]).tolist()
    return ValidationPlan(_id_chunks(ids, chunk_size), size)


def _id_chunks(ids: list[int], chunk_size: int) -> tuple[_Chunk, ...]:
    return tuple(
        _Chunk(
            ids[start],
            ids[min(start + chunk_size, len(ids)) - 1] + 1,
            ids[start : start + chunk_size],
        )
        for start in range(0, len(ids), chunk_size)
    )


def check_schema(conn: psycopg.Connection, spec: FormSpec) -> list[str]:
    """Compare the form's mapping with the population tables; return the problems found."""
    with wrap_errors("reading the population schema"):
        rows = conn.execute(
            """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name IN ('customers', 'pets')
            """
        ).fetchall()
    types = {f"{table}.{column}": data_type for table, column, data_type in rows}
    problems = []
    for name, source in spec.mapping.items():
        field_type = spec.field(name).type
        for column in source.columns:
            data_type = types.get(column)
            if data_type is None:
                problems.append(f"{name}: column {column} does not exist")
            elif len(source.columns) == 1 and data_type not in _COMPATIBLE_TYPES[field_type]:
                problems.append(f"{name}: column {column} is {data_type}, not a {field_type}")
    return problems


class Validator:
    """Runs validations of NPCs on one dedicated connection."""

    def __init__(
        self,
        conn: psycopg.Connection,
        spec: FormSpec,
        *,
        as_of: date,
        read_conn: psycopg.Connection | None = None,
    ) -> None:
        """
        Args:
            conn: an autocommit connection to a migrated population database.
            spec: the quote form.
            as_of: the day the form's date rules count from.
            read_conn: a second autocommit connection to the same database; when given, the
                next chunk is read on it while the current one is validated.

        Raises:
            QuoteFormError: pydantic rejected one of the form's rules.
        """
        self.conn = conn
        self.read_conn = read_conn
        self.spec = spec
        self.form = CompiledForm(spec, as_of)
        self._customer_query = sql.SQL("SELECT customer_id, {} FROM customers WHERE ").format(
            sql.SQL(", ").join(map(sql.Identifier, self.form.customer_columns))
            if self.form.customer_columns
            else sql.SQL("NULL")
        )
        self._pet_query = sql.SQL("SELECT pet_id, customer_id, {} FROM pets WHERE ").format(
            sql.SQL(", ").join(map(sql.Identifier, self.form.pet_columns))
            if self.form.pet_columns
            else sql.SQL("NULL")
        )

    def run(
        self,
        selection: Selection,
        *,
        chunk_size: int,
        on_progress: Callable[[ValidationProgress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ValidationSummary:
        """Validate the selected NPCs, logging every failure.

        Args:
            selection: which NPCs.
            chunk_size: NPCs per chunk (one read, one validation call, one write transaction).
            on_progress: called after every chunk.
            should_stop: polled between chunks; True stops the run as "cancelled".

        Raises:
            QuoteFormError: the form maps a column the database lacks or cannot fill it from.
            StoreError: the database failed; chunks written before the failure stay logged.
        """
        started = time.perf_counter()
        population = population_size(self.conn)
        self._check_schema(population)

        plan = plan_selection(committed_ranges(self.conn), selection, chunk_size)
        validation_id = self._create_run(selection.mode, plan.total)
        log.info(
            "validation %d: %s of %d NPCs in %d chunks with %s",
            validation_id,
            selection.mode,
            plan.total,
            len(plan.chunks),
            self.spec.label,
        )

        done = npcs_failed = pets = failures = 0
        by_field: Counter[str] = Counter()
        state = "failed"
        try:
            for customers, pet_rows in self._read_ahead(plan.chunks):
                if should_stop is not None and should_stop():
                    state = "cancelled"
                    break
                result = self._validate_chunk(validation_id, customers, pet_rows)
                done += result.npcs
                npcs_failed += result.npcs_failed
                pets += result.pets
                failures += result.failures
                by_field.update(result.failures_by_field)
                if on_progress is not None:
                    on_progress(
                        ValidationProgress(
                            validation_id,
                            done,
                            plan.total,
                            npcs_failed,
                            failures,
                            time.perf_counter() - started,
                        )
                    )
            else:
                state = "finished"
        except BaseException as error:
            self._finish_run(validation_id, "failed", str(error) or type(error).__name__)
            raise
        self._finish_run(validation_id, state, None)

        summary = ValidationSummary(
            validation_id=validation_id,
            state=state,
            npcs_checked=done,
            npcs_failed=npcs_failed,
            pets_checked=pets,
            failures=failures,
            elapsed=time.perf_counter() - started,
            missing_ids=plan.missing_ids,
            failures_by_field=dict(by_field),
        )
        if state == "finished":
            self._record_coverage_check(summary, population)
        log.info(
            "validation %d %s: %d NPCs, %d failing, %d failures, %.0f NPCs/s",
            validation_id,
            state,
            done,
            npcs_failed,
            failures,
            summary.rate,
        )
        return summary

    # Steps

    def _check_schema(self, population: int) -> None:
        problems = check_schema(self.conn, self.spec)
        detail = (
            "; ".join(problems)
            if problems
            else (
                f"{len(self.spec.mapping)} mapped fields match the population tables "
                f"({self.spec.label})"
            )
        )
        record_check(
            self.conn, Check.SCHEMA, passed=not problems, detail=detail, population=population
        )
        if problems:
            raise QuoteFormError(
                f"quote form {self.spec.path} does not fit the population database: {detail}; "
                "fix [mapping] in the form file"
            )

    def _create_run(self, mode: Mode, selected: int) -> int:
        with wrap_errors("starting a validation"):
            row = self.conn.execute(
                """
                INSERT INTO validation_runs
                    (mode, selected, form_name, form_version, form_path, form_fingerprint, as_of)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                RETURNING validation_id
                """,
                (
                    mode,
                    selected,
                    self.spec.name,
                    self.spec.version,
                    str(self.spec.path),
                    self.spec.fingerprint,
                    self.form.as_of,
                ),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def _finish_run(self, validation_id: int, state: str, error: str | None) -> None:
        try:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.rollback()
            self.conn.execute(
                """
                UPDATE validation_runs
                SET state = %s, error = %s, finished_at = now(), updated_at = now()
                WHERE validation_id = %s
                """,
                (state, error[:500] if error else None, validation_id),
            )
        except psycopg.Error as db_error:
            # The run row then stays "running"; readers show it as interrupted.
            log.warning("could not record the end of validation %d: %s", validation_id, db_error)

    def _read_ahead(self, chunks: Sequence[_Chunk]) -> Iterator[tuple[list[Any], list[Any]]]:
        """Yield each chunk's customer and pet rows. With a read connection, a thread reads the
        next chunk while the caller validates this one; psycopg releases the GIL while it waits
        for the server, so the two overlap."""
        read_conn = self.read_conn
        if read_conn is None:
            for chunk in chunks:
                yield self._read_chunk(self.conn, chunk)
            return

        results: queue.Queue[tuple[list[Any], list[Any]] | BaseException | None] = queue.Queue(
            maxsize=_READ_AHEAD
        )
        stopped = threading.Event()

        def hand_over(item: tuple[list[Any], list[Any]] | BaseException | None) -> None:
            while not stopped.is_set():
                try:
                    results.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def read_all() -> None:
            try:
                for chunk in chunks:
                    if stopped.is_set():
                        return
                    hand_over(self._read_chunk(read_conn, chunk))
                hand_over(None)
            except BaseException as error:  # handed to the consumer, which re-raises it
                hand_over(error)

        reader = threading.Thread(target=read_all, name="validation-reader", daemon=True)
        reader.start()
        try:
            while True:
                item = results.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stopped.set()
            reader.join()

    def _read_chunk(self, conn: psycopg.Connection, chunk: _Chunk) -> tuple[list[Any], list[Any]]:
        if chunk.ids is not None:
            where = sql.SQL("customer_id = ANY(%s) ORDER BY customer_id")
            params: tuple[Any, ...] = (chunk.ids,)
        else:
            where = sql.SQL("customer_id >= %s AND customer_id < %s ORDER BY customer_id")
            params = (chunk.first_id, chunk.end_id)
        pet_where = (
            sql.SQL("customer_id = ANY(%s) ORDER BY customer_id, pet_id")
            if chunk.ids is not None
            else sql.SQL("customer_id >= %s AND customer_id < %s ORDER BY customer_id, pet_id")
        )
        with wrap_errors(f"reading NPCs {chunk.first_id} to {chunk.end_id - 1}"):
            customers = conn.execute(self._customer_query + where, params).fetchall()
            pets = conn.execute(self._pet_query + pet_where, params).fetchall()
        return customers, pets

    def _validate_chunk(
        self, validation_id: int, customers: list[Any], pet_rows: list[Any]
    ) -> "_ChunkResult":
        pets_by_customer: dict[int, list[Any]] = {}
        for pet in pet_rows:
            pets_by_customer.setdefault(pet[1], []).append(pet)
        owned = [pets_by_customer.get(customer[0], []) for customer in customers]
        # Each NPC's answers are built, validated and dropped in turn, and only failures are
        # kept: holding a chunk's answers or results alive slows every garbage collection.
        answers_of = self.form.answers
        validate = self.form.validate_one
        copy_rows: list[tuple[Any, ...]] = []
        failing_instances: dict[str, set[tuple[int, int | None]]] = {}
        rule_counts: Counter[tuple[str, str]] = Counter()
        npcs_failed = 0
        for index, (customer, pets) in enumerate(zip(customers, owned, strict=True)):
            failures = validate(answers_of(customer[1:], [pet[2:] for pet in pets]))
            if not failures:
                continue
            npcs_failed += 1
            for failure in failures:
                pet_id = pets[failure.pet_index][0] if failure.pet_index is not None else None
                copy_rows.append(
                    (
                        validation_id,
                        customer[0],
                        pet_id,
                        failure.field,
                        failure.rule,
                        _as_text(failure.value),
                        failure.message,
                    )
                )
                failing_instances.setdefault(failure.field, set()).add((index, failure.pet_index))
                rule_counts[(failure.field, failure.rule)] += 1

        npcs = len(customers)
        pet_count = len(pet_rows)
        stats = []
        for spec in self.spec.fields:
            checked = pet_count if spec.section == "pet" else npcs
            failing = len(failing_instances.get(spec.name, ()))
            stats.append((validation_id, spec.name, checked, checked - failing))

        self._write_chunk(
            validation_id, copy_rows, stats, rule_counts, npcs, npcs_failed, pet_count
        )
        by_field: Counter[str] = Counter()
        for (field_name, _rule), count in rule_counts.items():
            by_field[field_name] += count
        return _ChunkResult(npcs, npcs_failed, pet_count, len(copy_rows), by_field)

    def _write_chunk(
        self,
        validation_id: int,
        copy_rows: list[tuple[Any, ...]],
        stats: list[tuple[int, str, int, int]],
        rule_counts: Counter[tuple[str, str]],
        npcs: int,
        npcs_failed: int,
        pets: int,
    ) -> None:
        with (
            wrap_errors(f"writing failures of validation {validation_id}"),
            self.conn.transaction(),
        ):
            cursor = self.conn.cursor()
            if copy_rows:
                with cursor.copy(
                    """
                    COPY validation_failures
                        (validation_id, customer_id, pet_id, field, rule, value, message)
                    FROM STDIN
                    """
                ) as copy:
                    for row in copy_rows:
                        copy.write_row(row)
            cursor.executemany(
                """
                INSERT INTO validation_field_stats (validation_id, field, checked, valid)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (validation_id, field) DO UPDATE
                SET checked = validation_field_stats.checked + excluded.checked,
                    valid = validation_field_stats.valid + excluded.valid
                """,
                stats,
            )
            if rule_counts:
                cursor.executemany(
                    """
                    INSERT INTO validation_rule_counts (validation_id, field, rule, failures)
                    VALUES (%s, %s, %s, %s)
                    ON CONFLICT (validation_id, field, rule) DO UPDATE
                    SET failures = validation_rule_counts.failures + excluded.failures
                    """,
                    [(validation_id, f, r, n) for (f, r), n in rule_counts.items()],
                )
            cursor.execute(
                """
                UPDATE validation_runs
                SET npcs_checked = npcs_checked + %s, npcs_failed = npcs_failed + %s,
                    pets_checked = pets_checked + %s, failures = failures + %s,
                    updated_at = now()
                WHERE validation_id = %s
                """,
                (npcs, npcs_failed, pets, len(copy_rows), validation_id),
            )

    def _record_coverage_check(self, summary: ValidationSummary, population: int) -> None:
        enough = min(COVERAGE_CHECK_MIN_NPCS, population)
        uncovered = [spec.name for spec in self.spec.uncovered if spec.required]
        failing = sorted(summary.failures_by_field)
        if summary.npcs_checked < enough or population == 0:
            return  # too small a validation to settle the milestone either way
        passed = not uncovered and not failing
        if passed:
            detail = f"{summary.npcs_checked:,} NPCs fill every field validly ({self.spec.label})"
        else:
            parts = []
            if uncovered:
                parts.append("no source for required " + ", ".join(uncovered))
            if failing:
                parts.append(
                    f"{summary.npcs_failed:,} of {summary.npcs_checked:,} NPCs fail "
                    + ", ".join(failing)
                )
            detail = "; ".join(parts) + f" ({self.spec.label})"
        record_check(self.conn, Check.COVERAGE, passed=passed, detail=detail, population=population)


@dataclass(frozen=True)
class _ChunkResult:
    npcs: int
    npcs_failed: int
    pets: int
    failures: int
    failures_by_field: Counter[str]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
