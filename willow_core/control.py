"""The control room's operations on generation runs, shared by the `willow` CLI and the TUI.

`ControlRoom` owns one database connection (re-opened after a failure) and one generator host.
Its methods are blocking and thread-safe; the TUI calls them from worker threads.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import psycopg
import psycopg.conninfo

from willow_core.config import Settings
from willow_core.errors import HostError, RunStateError, StoreError
from willow_core.hosts.base import ConnectionState, GeneratorHost
from willow_core.hosts.local import LocalHost
from willow_core.population.generator import GENERATOR_NAME, build_profile
from willow_core.store import runs
from willow_core.store.db import connect, describe_server, resolve_dsn
from willow_core.store.migrations import migrate
from willow_core.store.runs import Run, RunProgress
from willow_core.store.workers import unstopped_workers

if TYPE_CHECKING:
    from willow_core.hosts.deploy import DeployResult

log = logging.getLogger("willow.control")

T = TypeVar("T")


@dataclass(frozen=True)
class StoppedRun:
    """Outcome of `ControlRoom.stop`: the run and the workers it signalled."""

    run: Run
    signalled: tuple[int, ...]
    """PIDs of the workers on this control room's host that were sent SIGTERM."""
    elsewhere: int
    """Workers on other hosts, which stop at their next batch boundary instead."""


def select_host(settings: Settings) -> GeneratorHost:
    """Return the host that `[gpu_host]` names: SSH when `host` is set, else this machine."""
    if settings.gpu_host.host is None:
        return LocalHost()
    # Imported here: asyncssh is part of the control extra, not of a generator host's install.
    from willow_core.hosts.ssh import SshHost

    return SshHost(settings.gpu_host)


class ControlRoom:
    """Starts, pauses, resumes and reports generation runs."""

    def __init__(self, settings: Settings, host: GeneratorHost | None = None) -> None:
        self.settings = settings
        self.host: GeneratorHost = host or select_host(settings)
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
        self._check_host()
        population = build_profile(self.settings.population).describe()
        run = self._with_connection(
            lambda conn: runs.create_run(
                conn,
                total=total if total is not None else generation.total,
                batch_size=batch_size if batch_size is not None else generation.batch_size,
                seed=seed if seed is not None else generation.seed,
                generator=GENERATOR_NAME,
                population=population,
            )
        )
        self._launch_workers(run, workers)
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

        self._check_host()
        run = self._with_connection(request)
        self._launch_workers(run, workers)
        return run

    def stop(self, run_id: int | None = None) -> StoppedRun:
        """Stop a run now: SIGTERM to its workers' recorded PIDs on the host, then pause it.

        The batches in flight roll back; `resume` continues from the next uncommitted batch.
        Workers on other hosts stop at their next batch boundary. Processes are only ever
        signalled by the PID their worker row records, never looked up by name.

        Raises:
            RunStateError: the run has finished or does not exist.
            StoreError, HostError: the database or the host failed.
        """

        def read(conn: psycopg.Connection) -> tuple[Run, list[int], int]:
            run = runs.resolve_run(conn, run_id)
            if run.finished_at is not None:
                raise RunStateError(f"run {run.run_id} has finished; there is nothing to stop")
            workers = unstopped_workers(conn, run.run_id)
            mine = [worker.pid for worker in workers if worker.host == self.host.machine]
            return run, mine, len(workers) - len(mine)

        def pause(conn: psycopg.Connection) -> Run:
            run = runs.get_run(conn, target.run_id)
            return runs.request_pause(conn, run.run_id) if run.requested_state != "paused" else run

        self.host.connect()
        target, pids, elsewhere = self._with_connection(read)
        try:
            # Signals first, so these workers stop mid-batch instead of finishing it.
            for pid in pids:
                self.host.terminate(pid)
        finally:
            run = self._with_connection(pause)
        log.info("stopped run %d: SIGTERM to pids %s on %s", run.run_id, pids, self.host.name)
        return StoppedRun(run=run, signalled=tuple(pids), elsewhere=elsewhere)

    def deploy(
        self, *, wheel: Path | None = None, progress: Callable[[str], None] | None = None
    ) -> "DeployResult":
        """Build Willow's wheel and install it into the venv on the `[gpu_host]` host.

        Raises:
            HostError: no remote host is configured, or the build, copy or install failed.
        """
        from willow_core.hosts.deploy import deploy
        from willow_core.hosts.ssh import SshHost

        if not isinstance(self.host, SshHost):
            raise HostError(
                "willow deploy installs Willow on a remote generator host; set [gpu_host] host"
            )
        return deploy(self.host, wheel=wheel, progress=progress)

    def host_state(self) -> ConnectionState:
        """Return the state of the link to the generator host, without waiting."""
        return self.host.connection_state()

    def _check_host(self) -> None:
        """Refuse a launch the host cannot serve, before any row is written."""
        if self.host.remote and self.settings.postgres_dsn() is None:
            raise HostError(
                f"a generator on {self.host.name} cannot reach the embedded PostgreSQL, which "
                "listens only on this machine; set [postgres] dsn (or $WILLOW_POSTGRES_DSN) to "
                "a server both machines reach"
            )
        self.host.connect()

    def _launch_workers(self, run: Run, workers: int | None) -> None:
        """Launch the run's workers; if that fails, leave the run paused so `r` can retry."""
        requested = workers or (self.settings.gpu_host.workers if self.host.remote else None)
        requested = requested or self.settings.generation.workers
        # A worker beyond the number of unclaimed batches would only start and exit.
        pending = self._with_connection(lambda conn: runs.pending_batches(conn, run.run_id))
        count = max(1, min(requested, pending))
        try:
            self.host.launch_workers(run.run_id, count, self._worker_dsn())
        except HostError as error:
            with self.connection() as conn:
                runs.request_pause(conn, run.run_id)
            raise HostError(
                f"{error.message}. Run {run.run_id} is paused; fix that, then resume it "
                f"(r, or willow generate --resume {run.run_id})"
            ) from error

    def _worker_dsn(self) -> str:
        """Return the DSN for workers; a remote worker also gets the password this room used.

        The password then reaches the host only inside the launch request and the workers'
        environment (see willow_core.hosts.launch), never a command line.
        """
        dsn = self.dsn()
        if not self.host.remote:
            return dsn
        with self.connection() as conn:
            password = conn.info.password
        if password and not psycopg.conninfo.conninfo_to_dict(dsn).get("password"):
            return psycopg.conninfo.make_conninfo(dsn, password=password)
        return dsn

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
        """Close the database connection and the host's link; running workers are not affected."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self.host.close()
