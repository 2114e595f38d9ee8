"""The `willow deploy`, `willow stop` and `willow host` commands."""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from willow_core.errors import ConfigError, HostError
from willow_core.units import format_duration

if TYPE_CHECKING:
    from willow_core.cli import CommandContext


def register_commands(commands: "argparse._SubParsersAction[Any]") -> None:
    """Add the generator host commands to the `willow` parser."""
    deploy = commands.add_parser(
        "deploy",
        help="build Willow's wheel and install it into the venv on the [gpu_host] host",
        description="Build the wheel with uv, copy it over SFTP and install it into [gpu_host] "
        "venv on the host, with the core's dependencies pinned to uv.lock.",
    )
    deploy.set_defaults(handler=_deploy)
    deploy.add_argument("--wheel", type=Path, help="install this wheel instead of building one")

    stop = commands.add_parser(
        "stop",
        help="stop a run now by sending SIGTERM to its workers' recorded PIDs",
        description="Pause the run and send SIGTERM to its workers on the generator host, by the "
        "PIDs recorded in PostgreSQL. Batches in flight roll back; willow generate --resume "
        "continues from the next uncommitted batch.",
    )
    stop.set_defaults(handler=_stop)
    stop.add_argument("run", nargs="?", type=int, help="run id (default: the latest run)")
    stop.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    host = commands.add_parser(
        "host", help="connect to the generator host and show its state and installed Willow"
    )
    host.set_defaults(handler=_host)


def _deploy(args: argparse.Namespace, context: "CommandContext") -> int:
    console = context.console
    with console.status("Deploying…") as status:
        result = context.room.deploy(
            wheel=args.wheel, progress=lambda step: status.update(f"{step}…")
        )
    pinned = "pinned to uv.lock" if result.pinned else "NOT pinned: no uv.lock found"
    total = result.build_seconds + result.upload_seconds + result.install_seconds
    console.print(
        f"Installed willow {result.version} into {result.venv} on {result.host} "
        f"(Python {result.python_version}, {result.installer}, dependencies {pinned}) "
        f"in {format_duration(total)}.",
        highlight=False,
    )
    return 0


def _stop(args: argparse.Namespace, context: "CommandContext") -> int:
    if args.run is not None and args.run <= 0:
        raise ConfigError(f"run id {args.run} must be greater than 0")
    room, console = context.room, context.console
    target = f"run {args.run}" if args.run is not None else "the latest run"

    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"willow stop asks for confirmation; pass --yes to stop {target}")
        answer = console.input(
            f"Stop {target} now? Its workers on {room.host.name} get SIGTERM and their "
            "current batches roll back. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            console.print("Not stopped.")
            return 1

    stopped = room.stop(args.run)
    console.print(
        f"Stopped run {stopped.run.run_id}: SIGTERM sent to {len(stopped.signalled)} worker(s) "
        f"on {room.host.name}"
        + (f", {stopped.elsewhere} elsewhere stop after their batch" if stopped.elsewhere else "")
        + f". Resume with: willow generate --resume {stopped.run.run_id}",
        highlight=False,
    )
    return 0


def _host(args: argparse.Namespace, context: "CommandContext") -> int:
    from willow_core.hosts.deploy import installed_version
    from willow_core.hosts.ssh import SshHost

    room, console = context.room, context.console
    if not isinstance(room.host, SshHost):
        console.print("Generator host: this machine ([gpu_host] host is not set).")
        return 0

    host = room.host
    try:
        host.connect()
    except HostError:
        console.print(f"{host.address}: {host.connection_state().describe()}", highlight=False)
        raise
    paths = host.paths()
    try:
        version = f"willow {installed_version(host, paths)}"
    except HostError:
        version = "no willow installed (run willow deploy)"
    console.print(
        f"{host.name} ({host.address}): {host.connection_state().describe()}, "
        f"machine {host.machine}\n  venv {paths.venv}: {version}\n  logs {paths.logs}",
        highlight=False,
    )
    return 0
