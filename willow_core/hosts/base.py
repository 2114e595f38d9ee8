"""The interface every generator host implements.

A host only launches worker processes, reads their logs and ends them by PID. It never decides
what a worker does: that lives in the run's rows in PostgreSQL, which the workers read.
"""

import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class LaunchedWorker:
    pid: int
    log_path: str


class LinkStatus(StrEnum):
    LOCAL = "local"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RETRYING = "retrying"
    FAILED = "failed"


@dataclass(frozen=True)
class ConnectionState:
    """The link between the control room and a generator host, for the UI header."""

    status: LinkStatus
    reason: str = ""
    """Cause of the last failed attempt (RETRYING, FAILED); empty otherwise."""
    retry_at: float | None = None
    """`time.monotonic()` of the next attempt while RETRYING."""

    def describe(self, now: float | None = None) -> str:
        """Return the state as the header shows it: "connected", "retrying in 4 s", ..."""
        if self.status is LinkStatus.RETRYING and self.retry_at is not None:
            seconds = max(0, math.ceil(self.retry_at - (now or time.monotonic())))
            return f"retrying in {seconds} s"
        if self.status is LinkStatus.FAILED:
            return f"failed: {self.reason}"
        return str(self.status)


class GeneratorHost(Protocol):
    name: str
    """Name of the host that runs the workers, as the UI shows it ("this machine", "gpu-box")."""

    remote: bool
    """Whether workers run on another machine, which needs a database both machines reach."""

    machine: str
    """The host name that workers on this host record (`socket.gethostname()` there)."""

    def launch_workers(self, run_id: int, count: int, dsn: str) -> list[LaunchedWorker]:
        """Start `count` detached workers for run `run_id` that outlive the caller.

        Raises:
            HostError: a worker process could not be started.
        """
        ...

    def tail_log(self, path: str, lines: int) -> list[str]:
        """Return up to the last `lines` lines of a worker log; [] when it does not exist yet.

        Raises:
            HostError: the log could not be read.
        """
        ...

    def is_alive(self, pid: int) -> bool:
        """Return whether a process with this PID is running on the host."""
        ...

    def terminate(self, pid: int) -> None:
        """Send SIGTERM to the worker with this recorded PID.

        Raises:
            HostError: the process could not be signalled.
        """
        ...

    def connect(self) -> None:
        """Make sure the host can be reached now, connecting first when needed.

        Raises:
            HostError: the host cannot be reached or rejects the login.
        """
        ...

    def connection_state(self) -> ConnectionState:
        """Return the current state of the link to the host without waiting for it."""
        ...

    def close(self) -> None:
        """Release the connection to the host; running workers are not affected."""
        ...
