"""Generation runs and their batches: creation, state changes and progress.

A run is a row in `runs`; batch k of a run covers customers `first_customer_id + k * batch_size`
onwards and is a row in `batches`. Workers read `runs.requested_state` between batches, so pause
and resume are plain updates here and need no connection to the worker's host.

Progress, rates and ETA are computed from the batch rows (at most total / batch_size of them per
run), never by counting the population tables.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from willow_core.errors import RunStateError
from willow_core.store.db import wrap_errors

log = logging.getLogger("willow.store.runs")

HEARTBEAT_STALE_AFTER = timedelta(seconds=20)
"""A worker whose last heartbeat is older than this is presumed dead."""

LAUNCH_GRACE = timedelta(seconds=30)
"""After a start or resume, how long a run without a live worker still counts as starting up."""

RATE_WINDOW_SECONDS = 10
"""Seconds of recent commits that the current throughput averages over."""

HISTORY_SECONDS = 60
"""Seconds of per-second throughput history returned for the sparkline."""


class RunState(StrEnum):
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    FINISHED = "finished"
    CRASHED = "crashed"


@dataclass(frozen=True)
class Run:
    run_id: int
    seed: int
    total: int
    batch_size: int
    first_customer_id: int
    generator: str
    requested_state: str
    created_at: datetime
    resumed_at: datetime
    finished_at: datetime | None

    @property
    def batch_count(self) -> int:
        return math.ceil(self.total / self.batch_size)


@dataclass(frozen=True)
class RunProgress:
    """A snapshot of one run, computed from its batch and worker rows."""

    run: Run
    state: RunState
    customers: int
    """Customers committed so far."""
    pets: int
    """Pets committed so far."""
    batches_committed: int
    rate: float
    """Customers per second over the last RATE_WINDOW_SECONDS of commits."""
    history: tuple[int, ...]
    """Customers committed in each of the last HISTORY_SECONDS seconds, oldest first."""
    live_workers: int
    last_exit_reason: str | None
    """Exit reason of the most recently stopped worker; None when none has stopped."""
    log_paths: tuple[str, ...]
    """Log files of the run's workers, newest first."""
    as_of: datetime

    @property
    def fraction(self) -> float:
        return min(1.0, self.customers / self.run.total)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until the target at the current rate; None when unknown or not running."""
        if self.state is not RunState.RUNNING or self.rate <= 0:
            return None
        return (self.run.total - self.customers) / self.rate


_RUN_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(name)
    for name in (
        "run_id",
        "seed",
        "total",
        "batch_size",
        "first_customer_id",
        "generator",
        "requested_state",
        "created_at",
        "resumed_at",
        "finished_at",
    )
)


def create_run(
    conn: psycopg.Connection,
    *,
    total: int,
    batch_size: int,
    seed: int,
    generator: str,
    population: dict[str, Any] | None = None,
) -> Run:
    """Create a run and its batch rows, with customer ids following every earlier run's.

    Args:
        population: the population profile the run's workers generate from (settings and
            table fingerprints, as `PopulationProfile.describe` returns); None means defaults.

    Raises:
        RunStateError: another run has not finished; it must be resumed or finish first.
        StoreError: the database rejected the insert.
    """
    with wrap_errors("creating a run"), conn.transaction():
        # Serialises run creation so two starts cannot both pass the check below.
        conn.execute("LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE")
        unfinished = conn.execute(
            "SELECT run_id FROM runs WHERE finished_at IS NULL ORDER BY run_id LIMIT 1"
        ).fetchone()
        if unfinished is not None:
            (run_id,) = unfinished
            state = progress(conn, run_id).state
            raise RunStateError(
                f"run {run_id} is {state} and has not finished; resume it "
                f"(r, or willow generate --resume {run_id}) "
                "or let it finish before starting another"
            )

        cursor = conn.cursor(row_factory=class_row(Run))
        run = cursor.execute(
            sql.SQL(
                """
                INSERT INTO runs
                    (seed, total, batch_size, first_customer_id, generator, requested_state,
                     population)
                SELECT %(seed)s, %(total)s, %(batch_size)s,
                       coalesce(max(first_customer_id + total), 0), %(generator)s, 'running',
                       %(population)s
                FROM runs
                RETURNING {}
                """
            ).format(_RUN_COLUMNS),
            {
                "seed": seed,
                "total": total,
                "batch_size": batch_size,
                "generator": generator,
                "population": Jsonb(population) if population is not None else None,
            },
        ).fetchone()
        assert run is not None

        conn.execute(
            """
            INSERT INTO batches (run_id, batch_index, first_customer_id, size)
            SELECT %(run_id)s, k, %(first)s + k::bigint * %(batch_size)s,
                   least(%(batch_size)s, %(total)s - k::bigint * %(batch_size)s)
            FROM generate_series(0, %(batches)s - 1) AS k
            """,
            {
                "run_id": run.run_id,
                "first": run.first_customer_id,
                "batch_size": batch_size,
                "total": total,
                "batches": run.batch_count,
            },
        )

    log.info(
        "created run %d: %d customers in %d batches of %d, seed %d",
        run.run_id,
        total,
        run.batch_count,
        batch_size,
        seed,
    )
    return run


def get_run(conn: psycopg.Connection, run_id: int) -> Run:
    """Return one run.

    Raises:
        RunStateError: no run has this id.
    """
    with wrap_errors(f"reading run {run_id}"):
        cursor = conn.cursor(row_factory=class_row(Run))
        run = cursor.execute(
            sql.SQL("SELECT {} FROM runs WHERE run_id = %s").format(_RUN_COLUMNS), (run_id,)
        ).fetchone()
    if run is None:
        raise RunStateError(f"run {run_id} not found; willow runs lists the runs")
    return run


def list_runs(conn: psycopg.Connection) -> list[Run]:
    """Return every run, oldest first."""
    with wrap_errors("listing runs"):
        cursor = conn.cursor(row_factory=class_row(Run))
        return cursor.execute(
            sql.SQL("SELECT {} FROM runs ORDER BY run_id").format(_RUN_COLUMNS)
        ).fetchall()


def latest_run(conn: psycopg.Connection) -> Run | None:
    """Return the most recently created run, or None when there is none."""
    with wrap_errors("reading the latest run"):
        cursor = conn.cursor(row_factory=class_row(Run))
        return cursor.execute(
            sql.SQL("SELECT {} FROM runs ORDER BY run_id DESC LIMIT 1").format(_RUN_COLUMNS)
        ).fetchone()


def resolve_run(conn: psycopg.Connection, run_id: int | None) -> Run:
    """Return run `run_id`, or the latest run when it is None.

    Raises:
        RunStateError: the run does not exist, or there are no runs yet.
    """
    if run_id is not None:
        return get_run(conn, run_id)
    run = latest_run(conn)
    if run is None:
        raise RunStateError("no generation run yet; start one (s, or willow generate)")
    return run


def request_pause(conn: psycopg.Connection, run_id: int) -> Run:
    """Ask the run's workers to stop after the batch each is generating.

    Raises:
        RunStateError: the run has finished or is already paused.
    """
    with wrap_errors(f"pausing run {run_id}"), conn.transaction():
        run = _lock_run(conn, run_id)
        if run.finished_at is not None:
            raise RunStateError(f"run {run_id} has finished; there is nothing to pause")
        if run.requested_state == "paused":
            raise RunStateError(
                f"run {run_id} is already paused; "
                f"resume it (r, or willow generate --resume {run_id})"
            )
        conn.execute("UPDATE runs SET requested_state = 'paused' WHERE run_id = %s", (run_id,))
    log.info("requested pause of run %d", run_id)
    return get_run(conn, run_id)


def request_resume(conn: psycopg.Connection, run_id: int) -> Run:
    """Mark a paused or crashed run as running again; the caller then launches workers.

    Raises:
        RunStateError: the run has finished, or is running with live workers.
    """
    with wrap_errors(f"resuming run {run_id}"), conn.transaction():
        run = _lock_run(conn, run_id)
        if run.finished_at is not None or _all_committed(conn, run_id):
            raise RunStateError(
                f"run {run_id} has finished; start a new run (s, or willow generate)"
            )
        current = progress(conn, run_id).state
        if current is RunState.RUNNING:
            raise RunStateError(f"run {run_id} is already running")
        conn.execute(
            """
            UPDATE runs SET requested_state = 'running', resumed_at = now()
            WHERE run_id = %s
            """,
            (run_id,),
        )
    log.info("requested resume of run %d (was %s)", run_id, current)
    return get_run(conn, run_id)


def mark_finished_if_complete(conn: psycopg.Connection, run_id: int) -> bool:
    """Set the run's finished_at once every batch is committed; return whether it is finished."""
    with wrap_errors(f"finishing run {run_id}"), conn.transaction():
        if not _all_committed(conn, run_id):
            return False
        conn.execute(
            """
            UPDATE runs SET finished_at = (SELECT max(committed_at) FROM batches WHERE run_id = %s)
            WHERE run_id = %s AND finished_at IS NULL
            """,
            (run_id, run_id),
        )
    return True


def progress(conn: psycopg.Connection, run_id: int) -> RunProgress:
    """Compute a run's counts, state, throughput and history from its batch and worker rows."""
    with wrap_errors(f"reading progress of run {run_id}"):
        run = get_run(conn, run_id)
        row = conn.execute(
            """
            SELECT count(*) FILTER (WHERE committed_at IS NOT NULL),
                   coalesce(sum(customers), 0),
                   coalesce(sum(pets), 0),
                   max(committed_at),
                   now()
            FROM batches WHERE run_id = %s
            """,
            (run_id,),
        ).fetchone()
        assert row is not None
        batches_committed, customers, pets, last_commit, now = row

        workers = conn.execute(
            """
            SELECT count(*) FILTER (
                       WHERE stopped_at IS NULL AND heartbeat_at > now() - %(stale)s),
                   count(*) FILTER (WHERE started_at >= %(resumed_at)s),
                   (SELECT exit_reason FROM workers
                    WHERE run_id = %(run_id)s AND stopped_at IS NOT NULL
                    ORDER BY stopped_at DESC LIMIT 1),
                   coalesce(array_agg(log_path ORDER BY worker_id DESC)
                            FILTER (WHERE log_path IS NOT NULL), '{}')
            FROM workers WHERE run_id = %(run_id)s
            """,
            {"run_id": run_id, "stale": HEARTBEAT_STALE_AFTER, "resumed_at": run.resumed_at},
        ).fetchone()
        assert workers is not None
        live_workers, started_since_resume, last_exit_reason, log_paths = workers

        state = _derive_state(
            run, int(customers), int(live_workers), bool(started_since_resume), now
        )

        # The window ends now while the run is running, else at its last commit, so a paused or
        # finished run keeps showing the throughput it last had.
        window_end = now if state in (RunState.RUNNING, RunState.PAUSING) else last_commit or now
        per_second = conn.execute(
            """
            SELECT floor(extract(epoch FROM (%(end)s - committed_at)))::int AS seconds_ago,
                   sum(customers)
            FROM batches
            WHERE run_id = %(run_id)s
              AND committed_at > %(end)s - make_interval(secs => %(span)s)
              AND committed_at <= %(end)s
            GROUP BY 1
            """,
            {"run_id": run_id, "end": window_end, "span": HISTORY_SECONDS},
        ).fetchall()

    history = [0] * HISTORY_SECONDS
    for seconds_ago, count in per_second:
        if 0 <= seconds_ago < HISTORY_SECONDS:
            history[HISTORY_SECONDS - 1 - seconds_ago] = int(count)
    # A run resumed less than a window ago has only been producing since then.
    active_seconds = (window_end - run.resumed_at).total_seconds()
    rate_seconds = min(RATE_WINDOW_SECONDS, max(1, math.ceil(active_seconds)))
    rate = sum(history[-rate_seconds:]) / rate_seconds

    return RunProgress(
        run=run,
        state=state,
        customers=int(customers),
        pets=int(pets),
        batches_committed=int(batches_committed),
        rate=rate,
        history=tuple(history),
        live_workers=int(live_workers),
        last_exit_reason=last_exit_reason,
        log_paths=tuple(log_paths),
        as_of=now,
    )


@dataclass(frozen=True)
class WorkerRecord:
    worker_id: int
    host: str
    pid: int


def live_workers(conn: psycopg.Connection, run_id: int) -> list[WorkerRecord]:
    """Return the run's workers that have not stopped and whose heartbeat is recent."""
    with wrap_errors(f"reading workers of run {run_id}"):
        cursor = conn.cursor(row_factory=class_row(WorkerRecord))
        return cursor.execute(
            """
            SELECT worker_id, host, pid FROM workers
            WHERE run_id = %s AND stopped_at IS NULL AND heartbeat_at > now() - %s
            ORDER BY worker_id
            """,
            (run_id, HEARTBEAT_STALE_AFTER),
        ).fetchall()


def record_worker_gone(conn: psycopg.Connection, worker_id: int, reason: str) -> None:
    """Mark a worker whose process no longer exists as stopped, with the reason."""
    with wrap_errors(f"recording the end of worker {worker_id}"), conn.transaction():
        conn.execute(
            """
            UPDATE workers SET stopped_at = now(), exit_reason = %s
            WHERE worker_id = %s AND stopped_at IS NULL
            """,
            (reason, worker_id),
        )
    log.warning("worker %d: %s", worker_id, reason)


def _derive_state(
    run: Run, customers: int, live_workers: int, started_since_resume: bool, now: datetime
) -> RunState:
    if run.finished_at is not None or customers >= run.total:
        return RunState.FINISHED
    if run.requested_state == "paused":
        return RunState.PAUSING if live_workers else RunState.PAUSED
    if live_workers:
        return RunState.RUNNING
    # No live worker: still starting up if none has registered since the launch, else crashed.
    if not started_since_resume and now - run.resumed_at < LAUNCH_GRACE:
        return RunState.RUNNING
    return RunState.CRASHED


def _lock_run(conn: psycopg.Connection, run_id: int) -> Run:
    cursor = conn.cursor(row_factory=class_row(Run))
    run = cursor.execute(
        sql.SQL("SELECT {} FROM runs WHERE run_id = %s FOR UPDATE").format(_RUN_COLUMNS),
        (run_id,),
    ).fetchone()
    if run is None:
        raise RunStateError(f"run {run_id} not found; willow runs lists the runs")
    return run


def pending_batches(conn: psycopg.Connection, run_id: int) -> int:
    """Return how many of the run's batches are not committed yet."""
    with wrap_errors(f"counting pending batches of run {run_id}"):
        row = conn.execute(
            "SELECT count(*) FROM batches WHERE run_id = %s AND committed_at IS NULL", (run_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _all_committed(conn: psycopg.Connection, run_id: int) -> bool:
    pending = conn.execute(
        "SELECT 1 FROM batches WHERE run_id = %s AND committed_at IS NULL LIMIT 1", (run_id,)
    ).fetchone()
    return pending is None
