"""The interface every generator host implements.

A host only launches worker processes, reads their logs and ends them by PID. It never decides
what a worker does: that lives in the run's rows in PostgreSQL, which the workers read.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LaunchedWorker:
    pid: int
    log_path: str


class GeneratorHost(Protocol):
    name: str
    """Where workers run, as shown in the UI ("this machine", "gpu-box")."""

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
