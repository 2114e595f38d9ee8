"""Start detached generator workers on the machine this module runs on.

The SSH host runs `python -m willow_core.hosts.launch` from the venv on the generator host and
writes one JSON request to its standard input::

    {"run_id": 3, "count": 2, "log_dir": "/home/u/.local/share/willow/logs",
     "detach": "auto", "dsn": "host=db user=willow password=..."}

The DSN travels on standard input because it may carry the database password, which must never
appear on a command line (`ps` shows command lines to every user). Each worker receives it in its
environment as `$WILLOW_POSTGRES_DSN`. The reply is one JSON object on standard output: the
host's name, the willow version, how the workers were detached and each worker's PID and log.

Workers are detached in one of two ways:

- tmux (`detach = "tmux"`, or "auto" when tmux is on PATH): each worker gets its own session on
  the tmux server `-L willow`, so `tmux -L willow ls` lists them. A tmux pane inherits the tmux
  server's environment rather than ours, so the pane first runs `launch exec`, which reads the
  environment from a FIFO that only this user can open, then replaces itself with the worker
  (same PID). The FIFO keeps the data in kernel memory only and is removed once read.
- setsid: each worker runs in its own session with no terminal, so a closed SSH session sends
  it no SIGHUP.

Either way the worker's output goes to its log file on the host.
"""

import argparse
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from willow_core import __version__

DSN_ENV = "WILLOW_POSTGRES_DSN"
"""Environment variable the worker reads its DSN from (the same name as in willow_core.config,
repeated so that this module imports nothing heavier than the standard library)."""

TMUX_SOCKET = "willow"
"""Name of Willow's own tmux server (`tmux -L willow`), kept apart from the user's sessions."""

FIFO_WAIT_SECONDS = 15.0
"""How long a new tmux pane may take to open its environment FIFO before the launch fails."""


class LaunchError(Exception):
    """A worker could not be started; the message is shown to the user as it is."""


def launch(request: dict[str, Any]) -> dict[str, Any]:
    """Start the requested workers and return the reply described in the module docstring.

    Raises:
        LaunchError: the request is invalid, tmux is missing when required, or a worker did
            not start.
    """
    run_id = _require_int(request, "run_id")
    count = _require_int(request, "count")
    dsn = request.get("dsn")
    if not isinstance(dsn, str) or not dsn:
        raise LaunchError("the launch request has no dsn")
    log_dir = Path(str(request.get("log_dir") or ""))
    if not log_dir.is_absolute():
        raise LaunchError(f"log_dir {str(log_dir)!r} in the launch request is not an absolute path")

    detach = request.get("detach", "auto")
    tmux = shutil.which("tmux")
    if detach == "tmux" and tmux is None:
        raise LaunchError(
            'tmux is not installed or not on PATH; install it or set [gpu_host] detach = "auto"'
        )
    use_tmux = tmux is not None and detach in ("auto", "tmux")

    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    workers = []
    for index in range(1, count + 1):
        log_path = log_dir / f"run-{run_id}-{stamp}-{index}.log"
        if use_tmux:
            assert tmux is not None
            session = f"willow-run{run_id}-{stamp}-{index}"
            pid = _launch_in_tmux(tmux, session, run_id, log_path, {DSN_ENV: dsn})
            workers.append({"pid": pid, "log_path": str(log_path), "session": session})
        else:
            pid = _launch_in_new_session(run_id, log_path, {DSN_ENV: dsn})
            workers.append({"pid": pid, "log_path": str(log_path), "session": None})

    return {
        "hostname": socket.gethostname(),
        "version": __version__,
        "detach": "tmux" if use_tmux else "setsid",
        "workers": workers,
    }


def _worker_command(run_id: int, log_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "willow_core.population.worker",
        "--run-id",
        str(run_id),
        "--log-path",
        str(log_path),
    ]


def _launch_in_new_session(run_id: int, log_path: Path, environment: dict[str, str]) -> int:
    try:
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(
                _worker_command(run_id, log_path),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **environment},
                start_new_session=True,
                close_fds=True,
            )
    except OSError as error:
        raise LaunchError(f"could not start a worker with {sys.executable}: {error}") from error
    # The worker outlives this process, which exits next; init then reaps it.
    return process.pid


def _launch_in_tmux(
    tmux: str, session: str, run_id: int, log_path: Path, environment: dict[str, str]
) -> int:
    fifo_dir = Path(tempfile.mkdtemp(prefix="willow-launch-"))
    fifo = fifo_dir / "environment"
    try:
        os.mkfifo(fifo, 0o600)
        trampoline = [
            sys.executable,
            "-m",
            "willow_core.hosts.launch",
            "exec",
            "--environment-fifo",
            str(fifo),
            "--log-path",
            str(log_path),
            "--",
        ]
        started = subprocess.run(
            [
                tmux,
                "-L",
                TMUX_SOCKET,
                "new-session",
                "-d",
                "-P",
                "-F",
                "#{pane_pid}",
                "-s",
                session,
                "--",
                *trampoline,
                *_worker_command(run_id, log_path),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if started.returncode != 0:
            detail = started.stderr.strip() or f"exit status {started.returncode}"
            raise LaunchError(f"tmux could not create session {session}: {detail}")
        pid = int(started.stdout.strip())
        _write_environment(fifo, environment, pid)
        return pid
    finally:
        # The pane removes the FIFO once it has read it; this only cleans up after a failure.
        shutil.rmtree(fifo_dir, ignore_errors=True)


def _write_environment(fifo: Path, environment: dict[str, str], pid: int) -> None:
    payload = json.dumps(environment).encode()
    deadline = time.monotonic() + FIFO_WAIT_SECONDS
    while True:
        try:
            # Non-blocking, so a pane that died before opening the FIFO cannot hang the launch.
            descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise LaunchError(f"could not open {fifo}: {error.strerror}") from error
        if time.monotonic() > deadline:
            _terminate_quietly(pid)
            raise LaunchError(
                f"the tmux pane (pid {pid}) did not read its environment within "
                f"{FIFO_WAIT_SECONDS:.0f} s; its log may say why"
            )
        time.sleep(0.05)
    try:
        os.set_blocking(descriptor, True)
        os.write(descriptor, payload)
    finally:
        os.close(descriptor)


def _terminate_quietly(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)


def exec_with_environment(fifo: Path, log_path: Path, command: list[str]) -> None:
    """Read environment variables from `fifo`, send output to `log_path`, then exec `command`.

    The process keeps its PID, so the PID tmux reports is the worker's.
    """
    with open(fifo, "rb") as pipe:
        environment = json.loads(pipe.read() or b"{}")
    fifo.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        fifo.parent.rmdir()

    # Shown to anyone who attaches to the tmux session, before output moves to the log file.
    print(f"willow worker, pid {os.getpid()}; its log: tail -f {log_path}", flush=True)
    log_descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_descriptor, 1)
    os.dup2(log_descriptor, 2)
    os.close(log_descriptor)
    # Standard input stays on the pane's terminal: once no process has the terminal open,
    # tmux considers the pane dead, closes it and the kernel sends the worker SIGHUP.

    os.execve(command[0], command, {**os.environ, **environment})  # noqa: S606 - no shell wanted


def _require_int(request: dict[str, Any], key: str) -> int:
    value = request.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise LaunchError(f"{key} in the launch request must be a positive whole number")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point: `launch` reads a request on stdin; `exec` is the tmux pane trampoline."""
    parser = argparse.ArgumentParser(prog="willow-launch", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    trampoline = commands.add_parser("exec", help="read the environment from a FIFO, then exec")
    trampoline.add_argument("--environment-fifo", type=Path, required=True)
    trampoline.add_argument("--log-path", type=Path, required=True)
    trampoline.add_argument("worker", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "exec":
        command = args.worker[1:] if args.worker[:1] == ["--"] else args.worker
        if not command:
            parser.error("exec needs the worker command after --")
        exec_with_environment(args.environment_fifo, args.log_path, command)
        return 127  # execve only returns by raising

    try:
        request = json.load(sys.stdin)
        if not isinstance(request, dict):
            raise LaunchError("the launch request on stdin must be a JSON object")
        reply = launch(request)
    except (LaunchError, json.JSONDecodeError, OSError) as error:
        print(f"willow-launch: {error}", file=sys.stderr)
        return 1
    json.dump(reply, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
