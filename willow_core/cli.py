"""The `willow` command: the control room's operations, headless."""

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from willow_core import __version__
from willow_core.cli_args import positive_int, seed, worker_count
from willow_core.config import MAX_WORKERS, Settings, load_settings
from willow_core.control import ControlRoom
from willow_core.errors import ConfigError, WillowError
from willow_core.hosts.cli import register_commands as register_host_commands
from willow_core.journey.cli import register_commands as register_journey_commands
from willow_core.population.cli import register_commands as register_population_commands
from willow_core.quote_form.cli import register_commands as register_quote_form_commands
from willow_core.store.runs import RunProgress, RunState
from willow_core.units import format_count, format_duration

log = logging.getLogger("willow.cli")


@dataclass
class CommandContext:
    """Context of a command handler: the settings, the console and a lazily opened ControlRoom."""

    settings: Settings
    console: Console
    _room: ControlRoom | None = None

    @property
    def room(self) -> ControlRoom:
        if self._room is None:
            self._room = ControlRoom(self.settings)
        return self._room

    def close(self) -> None:
        if self._room is not None:
            self._room.close()


_LATEST = -1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="willow", description="Generate and steer Willow's synthetic UK population."
    )
    parser.add_argument("--version", action="version", version=f"willow {__version__}")
    parser.add_argument(
        "--config", type=Path, help="config file (default: $WILLOW_CONFIG, ./config.toml, user dir)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="start a generation run, or resume one")
    generate.set_defaults(handler=_generate)
    generate.add_argument("--total", type=positive_int, help="customers to generate")
    generate.add_argument("--batch-size", type=positive_int, help="customers per batch")
    generate.add_argument("--seed", type=seed, help="seed of the run")
    generate.add_argument(
        "--workers",
        type=worker_count,
        help=f"worker processes to launch (1-{MAX_WORKERS}; never more than unclaimed batches)",
    )
    generate.add_argument(
        "--resume",
        nargs="?",
        type=positive_int,
        const=_LATEST,
        metavar="RUN",
        help="resume run RUN (default: the latest run) instead of starting a new one",
    )
    generate.add_argument(
        "--detach", action="store_true", help="return at once instead of showing progress"
    )

    pause = commands.add_parser("pause", help="pause a run at its next batch boundary")
    pause.set_defaults(handler=_pause)
    pause.add_argument("run", nargs="?", type=positive_int, help="run id (default: the latest run)")
    pause.add_argument("--wait", action="store_true", help="wait until every worker has stopped")

    status = commands.add_parser("status", help="show a run's counts, rate, ETA and state")
    status.set_defaults(handler=_status)
    status.add_argument(
        "run", nargs="?", type=positive_int, help="run id (default: the latest run)"
    )

    list_runs = commands.add_parser("runs", help="list every run with its state and progress")
    list_runs.set_defaults(handler=_list_runs)

    register_quote_form_commands(commands)
    register_host_commands(commands)
    register_journey_commands(commands)
    register_population_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `willow` command; return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Output to a pipe or file gets wide lines, so tables and reports are not cut at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 160)

    try:
        settings = load_settings(args.config)
        context = CommandContext(settings=settings, console=console)
        try:
            handler: Callable[[argparse.Namespace, CommandContext], int] = args.handler
            return handler(args, context)
        finally:
            context.close()
    except ConfigError as error:
        print(f"willow: {error.message}", file=sys.stderr)
        return 2
    except WillowError as error:
        print(f"willow: {error.message}", file=sys.stderr)
        return 1


def _generate(args: argparse.Namespace, context: CommandContext) -> int:
    room, console = context.room, context.console
    if args.resume is not None:
        if args.total is not None or args.batch_size is not None or args.seed is not None:
            raise ConfigError(
                "--resume continues a run with its own target, batch size and seed; "
                "drop --total, --batch-size and --seed"
            )
        run_id = None if args.resume == _LATEST else args.resume
        run = room.resume(run_id, workers=args.workers)
        console.print(f"Resumed run {run.run_id} on {room.host.name}.")
    else:
        run = room.start_run(
            total=args.total, batch_size=args.batch_size, seed=args.seed, workers=args.workers
        )
        console.print(
            f"Started run {run.run_id}: {format_count(run.total)} customers in batches of "
            f"{format_count(run.batch_size)}, seed {run.seed}, on {room.host.name}."
        )
    if args.detach:
        return 0
    return _follow(room, run.run_id, console)


def _pause(args: argparse.Namespace, context: CommandContext) -> int:
    run = context.room.pause(args.run)
    context.console.print(f"Pausing run {run.run_id}: workers stop after their current batch.")
    if args.wait:
        return _follow(context.room, run.run_id, context.console)
    return 0


def _status(args: argparse.Namespace, context: CommandContext) -> int:
    progress = context.room.progress(args.run)
    if progress is None:
        context.console.print("No generation run yet. Start one with: willow generate --total N")
        return 0
    context.console.print(describe_progress(progress), highlight=False)
    return 0


def _list_runs(args: argparse.Namespace, context: CommandContext) -> int:
    all_progress = context.room.all_progress()
    if not all_progress:
        context.console.print("No generation run yet. Start one with: willow generate --total N")
        return 0
    table = Table(box=box.SIMPLE_HEAD)
    for header in ("run", "state", "customers", "target", "done", "seed", "batch", "created"):
        table.add_column(header, no_wrap=True)
    for progress in all_progress:
        run = progress.run
        table.add_row(
            str(run.run_id),
            str(progress.state),
            format_count(progress.customers),
            format_count(run.total),
            f"{progress.fraction:.1%}",
            str(run.seed),
            format_count(run.batch_size),
            run.created_at.strftime("%d/%m/%Y %H:%M"),
        )
    context.console.print(table)
    return 0


def describe_progress(progress: RunProgress) -> str:
    """Return the multi-line status report printed by `willow status`."""
    run = progress.run
    eta = progress.eta_seconds
    lines = [
        f"run {run.run_id}: {progress.state}",
        f"  customers  {format_count(progress.customers)} of {format_count(run.total)} "
        f"({progress.fraction:.1%})",
        f"  pets       {format_count(progress.pets)}",
        f"  batches    {format_count(progress.batches_committed)} of "
        f"{format_count(run.batch_count)} committed (batch size {format_count(run.batch_size)})",
        f"  rate       {_describe_rate(progress)}",
        f"  ETA        {format_duration(eta) if eta is not None else '-'}",
        f"  workers    {progress.live_workers} live",
        f"  seed       {run.seed}",
    ]
    if progress.state is RunState.CRASHED and progress.last_exit_reason:
        lines.append(f"  last exit  {progress.last_exit_reason}")
    return "\n".join(lines)


def _describe_rate(progress: RunProgress) -> str:
    rate = f"{format_count(round(progress.rate))} customers/s"
    if progress.state in (RunState.RUNNING, RunState.PAUSING):
        return rate
    return f"- ({progress.state}; it was {rate} before the last commit)"


def _follow(room: ControlRoom, run_id: int, console: Console) -> int:
    """Show a progress bar until the run finishes, pauses or crashes; Ctrl-C only detaches."""
    columns = (
        TextColumn("run {task.fields[run_id]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} customers"),
        TextColumn("{task.fields[rate]:,.0f}/s"),
        TextColumn("ETA {task.fields[eta]}"),
        TextColumn("{task.fields[state]}"),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            progress = _require_progress(room, run_id)
            task = bar.add_task(
                "generate", total=progress.run.total, run_id=run_id, rate=0, eta="-", state=""
            )
            while True:
                eta = progress.eta_seconds
                bar.update(
                    task,
                    total=progress.run.total,
                    completed=progress.customers,
                    rate=progress.rate,
                    eta=format_duration(eta) if eta is not None else "-",
                    state=str(progress.state),
                )
                if progress.state in (RunState.FINISHED, RunState.PAUSED, RunState.CRASHED):
                    break
                time.sleep(1.0)
                progress = _require_progress(room, run_id)
    except KeyboardInterrupt:
        console.print("Detached; the workers keep running. willow status shows their progress.")
        return 0

    if progress.state is RunState.CRASHED:
        console.print(f"Run {run_id} crashed: {progress.last_exit_reason or 'workers stopped'}.")
        console.print(f"Resume it with: willow generate --resume {run_id}")
        return 1
    console.print(f"Run {run_id} {progress.state}.")
    return 0


def _require_progress(room: ControlRoom, run_id: int) -> RunProgress:
    progress = room.progress(run_id)
    assert progress is not None, "progress of an existing run"
    return progress


if __name__ == "__main__":
    sys.exit(main())
