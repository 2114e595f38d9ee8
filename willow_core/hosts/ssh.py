"""Generator workers on a remote host, driven over SSH with asyncssh.

SSH only launches, checks and ends worker processes and reads their logs. The run's state lives
in PostgreSQL, so a dropped link never stops or corrupts a run. `SshHost` implements the
`GeneratorHost` protocol over one `SshLink` (see `willow_core.hosts.ssh_link`), which keeps the
connection open on a private event loop thread and reconnects with backoff. Its methods are
blocking and thread-safe, like `LocalHost`'s, for the control room's worker threads.

The database DSN, which may carry a password, reaches the host on the launcher's standard input
and the workers through their environment (see `willow_core.hosts.launch`). It never appears on a
remote command line and is never logged.
"""

import json
import logging
import posixpath
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from willow_core import __version__
from willow_core.config import GpuHostSettings
from willow_core.errors import HostError
from willow_core.hosts.base import ConnectionState, LaunchedWorker
from willow_core.hosts.ssh_link import (
    CommandResult,
    HostKeyError,
    LoginError,
    SshConnectError,
    SshLink,
)

__all__ = [
    "CommandResult",
    "HostKeyError",
    "LoginError",
    "RemotePaths",
    "SshConnectError",
    "SshHost",
]

log = logging.getLogger("willow.hosts.ssh")

COMMAND_TIMEOUT = 30.0
"""Seconds a short remote command (ps, tail, kill, the launcher) may take."""

UPLOAD_TIMEOUT = 600.0
"""Seconds an SFTP upload (a wheel of a few hundred KiB) may take on a slow link."""

POLL_TIMEOUT = 5.0
"""Seconds a polled operation (liveness check, log tail) may take before it counts as failed."""

POLL_PAUSE_SECONDS = 10.0
"""After a polled operation fails, how long later polls skip the host instead of waiting on a
link that may hang until keepalives close it (about 20 s)."""

WORKER_MODULE = "willow_core.population.worker"
LAUNCH_MODULE = "willow_core.hosts.launch"


@dataclass(frozen=True)
class RemotePaths:
    """Absolute paths on the host, with `~/` resolved against the SSH user's home."""

    venv: str
    python: str
    """The venv's interpreter, which runs the launcher and the workers."""
    logs: str
    wheels: str


class SshHost:
    """A generator host reached over SSH (`[gpu_host]`)."""

    remote = True

    def __init__(self, settings: GpuHostSettings) -> None:
        if settings.host is None:
            raise ValueError("SshHost needs [gpu_host] host")
        self.settings = settings
        self.name: str = settings.host
        self.address = f"{settings.host}:{settings.port}"
        self.machine = ""
        """The host's own name (`uname -n`), known once connected; workers record it."""
        self._home = ""
        self._link = SshLink(settings, self._learn_host)
        self._poll_failed_at: float | None = None

    def _learn_host(self, machine: str, home: str) -> None:
        self.machine, self._home = machine, home
        self._poll_failed_at = None

    def connect(self) -> None:
        """Wait until the host is connected, attempting a connection now if it is not.

        Raises:
            SshConnectError: the attempt failed; HostKeyError and LoginError give the reason.
        """
        self._link.call(self._link.connection(), self._link.outer_timeout(0))

    def connection_state(self) -> ConnectionState:
        """Return the state of the link, starting the connection on first use."""
        return self._link.state()

    def paths(self) -> RemotePaths:
        """Return the venv, log and wheel paths on the host (connecting first if needed)."""
        self.connect()
        return self._paths()

    def run_command(
        self, argv: Sequence[str], *, input: str | None = None, timeout: float = COMMAND_TIMEOUT
    ) -> CommandResult:
        """Run `argv` on the host, each argument shell-quoted; return exit status and output.

        A non-zero exit status is returned, not raised. Never put a secret in `argv`: remote
        command lines are visible to every user of the host; pass secrets in `input`.

        Raises:
            HostError: the host cannot be reached, the link dropped or the command timed out.
        """
        return self._link.call(
            self._link.run(shlex.join(argv), input=input, timeout=timeout, operation=argv[0]),
            self._link.outer_timeout(timeout),
        )

    def upload(self, local: Path, remote_dir: str) -> str:
        """Copy a local file into `remote_dir` on the host over SFTP; return its remote path.

        Raises:
            HostError: the copy failed.
        """
        return self._link.call(
            self._link.put(local, remote_dir), self._link.outer_timeout(UPLOAD_TIMEOUT)
        )

    def launch_workers(self, run_id: int, count: int, dsn: str) -> list[LaunchedWorker]:
        return self._link.call(
            self._launch(run_id, count, dsn), self._link.outer_timeout(2 * COMMAND_TIMEOUT)
        )

    def tail_log(self, path: str, lines: int) -> list[str]:
        """Return the last lines of a log on the host.

        Polled by the UI, so without a working link it raises at once instead of waiting for
        (and hurrying) the next reconnection attempt, and for POLL_PAUSE_SECONDS after a
        failed poll it raises without trying.
        """
        if self._poll_paused():
            raise HostError(f"{self.name} did not respond to the last request; trying again soon")
        try:
            tail = self._link.call(self._tail(path, lines), POLL_TIMEOUT + 1)
        except HostError:
            self._poll_failed_at = time.monotonic()
            raise
        self._poll_failed_at = None
        return tail

    def is_alive(self, pid: int) -> bool:
        """Return whether a willow worker with this PID runs on the host.

        Without a working link the result is unknown and this returns True, so that only the
        worker's heartbeat decides; it never waits for a reconnection.
        """
        if not self._link.is_open or self._poll_paused():
            return True
        try:
            alive = self._link.call(self._is_worker(pid, wait=False), POLL_TIMEOUT + 1)
        except HostError as error:
            self._poll_failed_at = time.monotonic()
            log.info("could not check pid %d on %s: %s", pid, self.name, error.message)
            return True
        self._poll_failed_at = None
        return alive

    def terminate(self, pid: int) -> None:
        self._link.call(self._terminate(pid), self._link.outer_timeout(3 * COMMAND_TIMEOUT))

    def close(self) -> None:
        self._link.close()

    def _poll_paused(self) -> bool:
        failed_at = self._poll_failed_at
        return failed_at is not None and time.monotonic() - failed_at < POLL_PAUSE_SECONDS

    # Operations, run on the link's event loop.

    def _resolve(self, path: str) -> str:
        if path == "~":
            return self._home
        if path.startswith("~/"):
            path = path[2:]
        return posixpath.normpath(posixpath.join(self._home, path))

    def _paths(self) -> RemotePaths:
        venv = self._resolve(self.settings.venv)
        remote_dir = self._resolve(self.settings.remote_dir)
        return RemotePaths(
            venv=venv,
            python=posixpath.join(venv, "bin", "python"),
            logs=posixpath.join(remote_dir, "logs"),
            wheels=posixpath.join(remote_dir, "wheels"),
        )

    async def _launch(self, run_id: int, count: int, dsn: str) -> list[LaunchedWorker]:
        await self._link.connection()
        paths = self._paths()
        request = json.dumps(
            {
                "run_id": run_id,
                "count": count,
                "log_dir": paths.logs,
                "detach": self.settings.detach,
                "dsn": dsn,
            }
        )
        result = await self._link.run(
            shlex.join([paths.python, "-m", LAUNCH_MODULE]),
            input=request,
            timeout=COMMAND_TIMEOUT * 2,
            operation="starting workers",
        )
        if result.exit_status == 127:
            raise HostError(
                f"no Willow venv at {paths.venv} on {self.name} ({paths.python} not found); "
                "run willow deploy (d in the control room) first"
            )
        if "No module named" in result.stderr and "willow_core" in result.stderr:
            raise HostError(
                f"Willow is not installed in the venv {paths.venv} on {self.name}; "
                "run willow deploy (d in the control room)"
            )
        if result.exit_status != 0:
            raise HostError(
                f"starting workers for run {run_id} on {self.name} failed: {result.error_line}"
            )

        try:
            reply = json.loads(result.stdout)
            launched = [
                LaunchedWorker(pid=int(worker["pid"]), log_path=str(worker["log_path"]))
                for worker in reply["workers"]
            ]
        except (ValueError, KeyError, TypeError) as error:
            raise HostError(
                f"the launcher on {self.name} returned an unreadable reply: {error}"
            ) from error

        if reply.get("version") != __version__:
            log.warning(
                "%s runs willow %s but this control room is %s; run willow deploy to match",
                self.name,
                reply.get("version"),
                __version__,
            )
        log.info(
            "launched %d worker(s) for run %d on %s in %s: pids %s",
            len(launched),
            run_id,
            self.name,
            reply.get("detach"),
            ", ".join(str(worker.pid) for worker in launched),
        )
        return launched

    async def _tail(self, path: str, lines: int) -> list[str]:
        result = await self._link.run(
            shlex.join(["tail", "-n", str(lines), "--", path]),
            timeout=POLL_TIMEOUT,
            operation="reading the worker log",
            wait=False,
        )
        if result.exit_status != 0:
            if "No such file" in result.stderr:
                return []
            raise HostError(f"could not read worker log {path} on {self.name}: {result.error_line}")
        return result.stdout.splitlines()[-lines:]

    async def _is_worker(self, pid: int, *, wait: bool = True) -> bool:
        # The command line must be Willow's: after a reboot the PID may belong to anything else.
        result = await self._link.run(
            shlex.join(["ps", "-o", "args=", "-p", str(pid)]),
            timeout=POLL_TIMEOUT,
            operation="checking a worker",
            wait=wait,
        )
        return result.exit_status == 0 and (
            WORKER_MODULE in result.stdout or LAUNCH_MODULE in result.stdout
        )

    async def _terminate(self, pid: int) -> None:
        if not await self._is_worker(pid):
            log.info("worker pid %d on %s has already gone", pid, self.name)
            return
        result = await self._link.run(
            shlex.join(["kill", "-TERM", str(pid)]), timeout=COMMAND_TIMEOUT, operation="kill"
        )
        if result.exit_status != 0 and await self._is_worker(pid):
            raise HostError(f"could not stop worker pid {pid} on {self.name}: {result.error_line}")
        log.info("sent SIGTERM to worker pid %d on %s", pid, self.name)
