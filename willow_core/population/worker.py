"""The generator worker: claims, generates and commits batches until its run is paused or done.

Each batch is claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, generated, copied into the
population tables and marked committed in one transaction. A worker that dies mid-batch leaves
nothing behind: PostgreSQL rolls the transaction back and the batch is free to claim again. Any
number of workers, on any number of hosts, can serve one run.

Run it as `python -m willow_core.population.worker --run-id N` with the database DSN in
`$WILLOW_POSTGRES_DSN`; it logs to standard error, which the host redirects to a log file.
"""

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from types import FrameType

import psycopg

from willow_core.config import DSN_ENV
from willow_core.errors import WillowError
from willow_core.population.generator import generate_batch, profile_from_run
from willow_core.store.db import connect, wrap_errors
from willow_core.store.ingest import copy_batch
from willow_core.store.runs import mark_finished_if_complete

log = logging.getLogger("willow.population.worker")

HEARTBEAT_SECONDS = 5.0
"""Seconds between heartbeats; must stay well under runs.HEARTBEAT_STALE_AFTER."""


class _Heartbeat(threading.Thread):
    """Updates the worker's heartbeat on its own connection, so a long batch never looks dead."""

    def __init__(self, dsn: str, worker_id: int) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self._dsn = dsn
        self._worker_id = worker_id
        self._stopped = threading.Event()

    def run(self) -> None:
        failures = 0
        while not self._stopped.wait(HEARTBEAT_SECONDS):
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(
                        "UPDATE workers SET heartbeat_at = now() WHERE worker_id = %s",
                        (self._worker_id,),
                    )
                failures = 0
            except psycopg.Error as error:
                failures += 1
                if failures == 1 or failures % 12 == 0:
                    log.warning("heartbeat failed %d time(s) in a row: %s", failures, error)

    def stop(self) -> None:
        self._stopped.set()


def run_worker(dsn: str, run_id: int, *, log_path: str | None = None) -> str:
    """Serve run `run_id` until it is paused, finished or fails; return why the worker stopped.

    Raises:
        StoreError: the database is unreachable or a batch could not be written.
    """
    conn = connect(dsn)
    with wrap_errors(f"registering a worker for run {run_id}"):
        row = conn.execute(
            """
            INSERT INTO workers (run_id, host, pid, log_path) VALUES (%s, %s, %s, %s)
            RETURNING worker_id
            """,
            (run_id, socket.gethostname(), os.getpid(), log_path),
        ).fetchone()
        conn.commit()
    assert row is not None
    (worker_id,) = row
    log.info("worker %d (pid %d) serving run %d", worker_id, os.getpid(), run_id)

    heartbeat = _Heartbeat(dsn, worker_id)
    heartbeat.start()
    reason = "error: stopped unexpectedly"
    try:
        reason = _serve(conn, run_id, worker_id)
        return reason
    except BaseException as error:
        reason = f"error: {error}" if str(error) else f"error: {type(error).__name__}"
        raise
    finally:
        heartbeat.stop()
        _record_stop(conn, dsn, worker_id, reason)
        conn.close()
        log.info("worker %d stopped: %s", worker_id, reason)


def _serve(conn: psycopg.Connection, run_id: int, worker_id: int) -> str:
    while True:
        started = time.perf_counter()
        with wrap_errors(f"generating a batch of run {run_id}"), conn.transaction():
            run = conn.execute(
                "SELECT seed, requested_state, population FROM runs WHERE run_id = %s",
                (run_id,),
            ).fetchone()
            if run is None:
                return f"run {run_id} not found"
            seed, requested_state, population = run
            profile = profile_from_run(population)
            if requested_state == "paused":
                return "paused"

            claim = conn.execute(
                """
                SELECT batch_index, first_customer_id, size FROM batches
                WHERE run_id = %s AND committed_at IS NULL
                ORDER BY batch_index
                LIMIT 1
                FOR UPDATE SKIP LOCKED
                """,
                (run_id,),
            ).fetchone()
            if claim is None:
                break
            batch_index, first_customer_id, size = claim
            log.info("claimed batch %d (customers %d+%d)", batch_index, first_customer_id, size)

            batch = generate_batch(seed, batch_index, first_customer_id, size, profile)
            copy_batch(conn, batch, run_id, batch_index)
            conn.execute(
                """
                UPDATE batches
                SET customers = %s, pets = %s, worker_id = %s,
                    started_at = now(), committed_at = clock_timestamp()
                WHERE run_id = %s AND batch_index = %s
                """,
                (len(batch.customers), len(batch.pets), worker_id, run_id, batch_index),
            )
            # The last batch finishes the run in its own transaction. Two workers that commit
            # the last two batches at once each see the other's batch as pending, so neither
            # sets finished_at here. In that case mark_finished_if_complete below sets it.
            conn.execute(
                """
                UPDATE runs SET finished_at = clock_timestamp()
                WHERE run_id = %(run_id)s AND finished_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM batches
                                  WHERE run_id = %(run_id)s AND committed_at IS NULL)
                """,
                {"run_id": run_id},
            )
        log.info(
            "committed batch %d: %d customers, %d pets in %.2f s",
            batch_index,
            len(batch.customers),
            len(batch.pets),
            time.perf_counter() - started,
        )

    if mark_finished_if_complete(conn, run_id):
        # A bulk load leaves the planner's statistics stale; sampling and validation plan
        # their index scans on them. ANALYZE reads a fixed-size sample, so it takes about a
        # second even at 10 million customers.
        with wrap_errors(f"analysing the population after run {run_id}"):
            conn.execute("ANALYZE customers, pets")
            conn.commit()
        log.info("run %d finished; statistics of customers and pets updated", run_id)
        return "finished"
    return "no batch left to claim; other workers hold the rest"


def _record_stop(conn: psycopg.Connection, dsn: str, worker_id: int, reason: str) -> None:
    statement = "UPDATE workers SET stopped_at = now(), exit_reason = %s WHERE worker_id = %s"
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.execute(statement, (reason[:500], worker_id))
        conn.commit()
        return
    except psycopg.Error:
        # A signal in the middle of a COPY leaves the connection busy ("another command is
        # already in progress"): drop it, which rolls the batch back, and use a new one.
        conn.close()
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as fresh:
            fresh.execute(statement, (reason[:500], worker_id))
    except psycopg.Error as error:
        log.warning("could not record the stop of worker %d: %s", worker_id, error)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"terminated by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of a detached worker process."""
    parser = argparse.ArgumentParser(prog="willow-worker", description=__doc__)
    parser.add_argument("--run-id", type=int, required=True, help="the run to serve")
    parser.add_argument("--log-path", help="this worker's log file, recorded for the control room")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    dsn = os.environ.get(DSN_ENV)
    if not dsn:
        log.error("%s is not set; the worker needs the population database's DSN", DSN_ENV)
        return 2

    try:
        run_worker(dsn, args.run_id, log_path=args.log_path)
    except WillowError as error:
        log.error("%s", error.message)
        return 1
    except SystemExit as error:
        log.warning("%s", error)
        return 143
    return 0


if __name__ == "__main__":
    sys.exit(main())
