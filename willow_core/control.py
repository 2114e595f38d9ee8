"""The control room's operations on generation runs, shared by the `willow` CLI and the TUI.

`ControlRoom` owns one database connection (re-opened after a failure) and one generator host.
Its methods are blocking and thread-safe; the TUI calls them from worker threads.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg

from willow_core.config import Settings
from willow_core.errors import StoreError
from willow_core.hosts.base import GeneratorHost
from willow_core.hosts.local import LocalHost
from willow_core.population.generator import GENERATOR_NAME
from willow_core.store import runs
from willow_core.store.db import connect, describe_server, resolve_dsn
from willow_core.store.migrations import migrate
from willow_core.store.runs import Run, RunProgress

log = logging.getLogger("willow.control")

T = TypeVar("T")


class ControlRoom:
    """Starts, pauses, resumes and reports generation runs."""

    def __init__(self, settings: Settings, host: GeneratorHost | None = None) -> None:
        self.settings = settings
        self.host: GeneratorHost = host or LocalHost()
        self._dsn: str | None = None
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()

    @property
    def database_label(self) -> str:
        """Where the population database is, without credentials."""
        if self.settings.postgres_dsn() is None:
            return "embedded PostgreSQL"
        return describe_server(self.settings.postgres_dsn() or "")

    def dsn(self) -> str:
        """Return the population database's DSN, starting the embedded server on first use."""
        with self._lock:
            if self._dsn is None:
                self._dsn = resolve_dsn(self.settings)
            return self._dsn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """Yield the shared connection, opening and migrating it first when needed.

        A connection that fails is closed, so the next call opens a fresh one.
        """
        with self._lock:
            if self._conn is None or self._conn.closed:
                try:
                    conn = connect(self.dsn(), timeout=self.settings.postgres.connect_timeout)
                except StoreError:
                    # Resolve again next time, which restarts an embedded server that has stopped.
                    self._dsn = None
                    raise
                conn.autocommit = True
                try:
                    migrate(conn)
                except StoreError:
                    conn.close()
                    raise
                self._conn = conn
            try:
                yield self._conn
            except StoreError:
                if self._conn.broken or self._conn.closed:
                    self._conn.close()
                    self._conn = None
                    self._dsn = None
                raise

    def _with_connection(self, operation: Callable[[psycopg.Connection], T]) -> T:
        with self.connection() as conn:
            return operation(conn)

    def start_run(
        self,
        *,
        total: int | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        workers: int | None = None,
    ) -> Run:
        """Create a run (defaults from `[generation]`) and launch its workers on the host.

        Raises:
            RunStateError: another run has not finished.
            StoreError, HostError: the database or the host failed.
        """
        generation = self.settings.generation
        run = self._with_connection(
            lambda conn: runs.create_run(
                conn,
                total=total if total is not None else generation.total,
                batch_size=batch_size if batch_size is not None else generation.batch_size,
                seed=seed if seed is not None else generation.seed,
                generator=GENERATOR_NAME,
            )
        )
        self.host.launch_workers(run.run_id, workers or generation.workers, self.dsn())
        return run

    def pause(self, run_id: int | None = None) -> Run:
        """Ask the run's workers to stop at the next batch boundary (latest run by default)."""
        return self._with_connection(
            lambda conn: runs.request_pause(conn, runs.resolve_run(conn, run_id).run_id)
        )

    def resume(self, run_id: int | None = None, workers: int | None = None) -> Run:
        """Resume a paused or crashed run from its next uncommitted batch and launch workers."""

        def request(conn: psycopg.Connection) -> Run:
            target = runs.resolve_run(conn, run_id).run_id
            self._record_dead_workers(conn, target)
            return runs.request_resume(conn, target)

        run = self._with_connection(request)
        self.host.launch_workers(
            run.run_id, workers or self.settings.generation.workers, self.dsn()
        )
        return run

    def progress(self, run_id: int | None = None) -> RunProgress | None:
        """Return the progress of a run (latest by default); None when there are no runs."""

        def read(conn: psycopg.Connection) -> RunProgress | None:
            target = run_id
            if target is None:
                latest = runs.latest_run(conn)
                if latest is None:
                    return None
                target = latest.run_id
            self._record_dead_workers(conn, target)
            return runs.progress(conn, target)

        return self._with_connection(read)

    def _record_dead_workers(self, conn: psycopg.Connection, run_id: int) -> None:
        """Record workers on this host whose process has gone as stopped.

        A killed worker then shows at once, instead of when its heartbeat goes stale.
        """
        for worker in runs.live_workers(conn, run_id):
            if worker.host == self.host.machine and not self.host.is_alive(worker.pid):
                runs.record_worker_gone(
                    conn, worker.worker_id, f"process {worker.pid} on {worker.host} has gone"
                )

    def all_progress(self) -> list[RunProgress]:
        """Return the progress of every run, oldest first."""

        def read(conn: psycopg.Connection) -> list[RunProgress]:
            return [runs.progress(conn, run.run_id) for run in runs.list_runs(conn)]

        return self._with_connection(read)

    def log_tail(self, progress: RunProgress, lines: int) -> list[str]:
        """Return the last lines of the run's newest worker log."""
        if not progress.log_paths:
            return []
        return self.host.tail_log(progress.log_paths[0], lines)

    def close(self) -> None:
        """Close the database connection; running workers are not affected."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
