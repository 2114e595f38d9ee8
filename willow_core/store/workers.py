"""Worker rows of a run, as the control room needs them to stop workers by PID."""

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row

from willow_core.store.db import wrap_errors


@dataclass(frozen=True)
class WorkerProcess:
    worker_id: int
    host: str
    """The name the worker's machine gives itself (`socket.gethostname()`)."""
    pid: int


def unstopped_workers(conn: psycopg.Connection, run_id: int) -> list[WorkerProcess]:
    """Return the run's workers that have not recorded a stop, stale heartbeats included.

    A worker whose heartbeat is stale may still be running (hung, or cut off from the database),
    so stopping a run must consider it too.
    """
    with wrap_errors(f"reading workers of run {run_id}"):
        cursor = conn.cursor(row_factory=class_row(WorkerProcess))
        return cursor.execute(
            """
            SELECT worker_id, host, pid FROM workers
            WHERE run_id = %s AND stopped_at IS NULL
            ORDER BY worker_id
            """,
            (run_id,),
        ).fetchall()
