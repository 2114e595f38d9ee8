"""Generator workers as detached processes on this machine."""

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

from willow_core.config import DSN_ENV
from willow_core.errors import HostError
from willow_core.hosts.base import ConnectionState, LaunchedWorker, LinkStatus
from willow_core.paths import logs_dir

log = logging.getLogger("willow.hosts.local")

TAIL_READ_BYTES = 64 * 1024
"""Bytes read from the end of a log file to find its last lines."""


class LocalHost:
    """Runs workers as `python -m willow_core.population.worker` in their own sessions.

    Each worker gets its own session (so closing the terminal or quitting the TUI does not signal
    it) and its own log file. The DSN reaches it through the environment, never the command line.
    """

    name = "this machine"
    remote = False

    def __init__(self, log_dir: Path | None = None) -> None:
        self._log_dir = log_dir
        self.machine = socket.gethostname()

    def launch_workers(self, run_id: int, count: int, dsn: str) -> list[LaunchedWorker]:
        directory = self._log_dir or logs_dir()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        environment = {**os.environ, DSN_ENV: dsn}

        launched = []
        for index in range(count):
            log_path = directory / f"run-{run_id}-{stamp}-{index + 1}.log"
            command = [
                sys.executable,
                "-m",
                "willow_core.population.worker",
                "--run-id",
                str(run_id),
                "--log-path",
                str(log_path),
            ]
            try:
                with open(log_path, "ab") as log_file:
                    process = subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=subprocess.STDOUT,
                        env=environment,
                        start_new_session=True,
                        close_fds=True,
                    )
            except OSError as error:
                raise HostError(
                    f"could not start a generator worker with {sys.executable}: {error.strerror}"
                ) from error

            # Reap the child when it exits, so it never lingers as a zombie that looks alive.
            threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
            log.info("launched worker pid %d for run %d, log %s", process.pid, run_id, log_path)
            launched.append(LaunchedWorker(pid=process.pid, log_path=str(log_path)))
        return launched

    def tail_log(self, path: str, lines: int) -> list[str]:
        try:
            with open(path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                size = log_file.tell()
                log_file.seek(max(0, size - TAIL_READ_BYTES))
                data = log_file.read()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise HostError(f"could not read worker log {path}: {error.strerror}") from error
        text = data.decode("utf-8", errors="replace")
        return text.splitlines()[-lines:]

    def is_alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def terminate(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        except OSError as error:
            raise HostError(f"could not stop worker pid {pid}: {error.strerror}") from error
        log.info("sent SIGTERM to worker pid %d", pid)

    def connect(self) -> None:
        return None

    def connection_state(self) -> ConnectionState:
        return ConnectionState(LinkStatus.LOCAL)

    def close(self) -> None:
        return None
