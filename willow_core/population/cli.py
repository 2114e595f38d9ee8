"""The `willow report distributions` command."""

import argparse
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table
from rich.text import Text

from willow_core.cli_args import positive_int
from willow_core.population.generator import PopulationProfile, build_profile, profile_from_run
from willow_core.population.report import (
    DistributionReport,
    evaluate,
    generate_sample,
    sample_population,
)
from willow_core.store import runs
from willow_core.store.db import wrap_errors
from willow_core.units import format_count

if TYPE_CHECKING:
    from willow_core.cli import CommandContext


def register_commands(commands: "argparse._SubParsersAction[Any]") -> None:
    """Add the `report` command and its `distributions` subcommand to the `willow` parser."""
    report = commands.add_parser("report", help="reports on the population")
    reports = report.add_subparsers(dest="report", required=True)
    distributions = reports.add_parser(
        "distributions",
        help="compare a sample of the population with every generator target",
        description="Draw a sample of committed NPCs, measure every target of the run's "
        "population settings (shares, means and ranges) and flag each one off by more than "
        "the tolerance plus three standard errors. Exits 1 when any check is flagged.",
    )
    distributions.set_defaults(handler=_distributions)
    distributions.add_argument(
        "--sample",
        type=positive_int,
        metavar="N",
        help="NPCs to sample (default: [population] report_sample_size)",
    )
    distributions.add_argument(
        "--run", type=positive_int, metavar="RUN", help="sample this run only (default: every run)"
    )
    distributions.add_argument("--seed", type=int, default=1, help="seed of the sample")
    distributions.add_argument(
        "--share-tolerance",
        type=_fraction,
        metavar="X",
        help="largest gap of a share, 0-1 (default: [population] report_share_tolerance)",
    )
    distributions.add_argument(
        "--mean-tolerance",
        type=_fraction,
        metavar="X",
        help="largest relative gap of a mean, 0-1 (default: [population] report_mean_tolerance)",
    )
    distributions.add_argument(
        "--generate",
        action="store_true",
        help="measure a sample generated in memory from the configured settings instead of "
        "the database",
    )


def _distributions(args: argparse.Namespace, context: "CommandContext") -> int:
    settings = context.settings.population
    size = args.sample or settings.report_sample_size
    overrides: dict[str, float] = {}
    if args.share_tolerance is not None:
        overrides["report_share_tolerance"] = args.share_tolerance
    if args.mean_tolerance is not None:
        overrides["report_mean_tolerance"] = args.mean_tolerance

    if args.generate:
        profile = build_profile(settings.model_copy(update=overrides))
        sample = generate_sample(profile, size, args.seed)
        source = f"{format_count(size)} NPCs generated in memory"
    else:
        with context.room.connection() as conn:
            profile = _run_profile(conn, args.run, settings)
            profile = build_profile(profile.settings.model_copy(update=overrides))
            sample = sample_population(conn, size, args.seed, args.run)
        scope = f"run {args.run}" if args.run else "every run"
        source = f"{format_count(sample.size)} NPCs sampled from {scope}"
        if sample.size == 0:
            context.console.print(
                "No committed NPCs to sample. Generate some with willow generate."
            )
            return 1

    report = evaluate(sample, profile)
    context.console.print(render(report, source))
    if report.flagged:
        context.console.print(
            f"{len(report.flagged)} of {len(report.checks)} checks are off target by more than "
            "the tolerance.",
            style="bold red",
        )
        return 1
    context.console.print(f"All {len(report.checks)} checks are within tolerance.", style="green")
    return 0


def _run_profile(conn: Any, run_id: int | None, settings: Any) -> PopulationProfile:
    """Return the profile of run `run_id` (or the latest run); the settings when there is none."""
    run = runs.get_run(conn, run_id) if run_id else runs.latest_run(conn)
    if run is None:
        return build_profile(settings)
    with wrap_errors(f"reading the population settings of run {run.run_id}"):
        row = conn.execute(
            "SELECT population FROM runs WHERE run_id = %s", (run.run_id,)
        ).fetchone()
    if row is None or not row[0]:
        return build_profile(settings)
    return profile_from_run(row[0])


def render(report: DistributionReport, source: str) -> Table:
    """Return the report as a table: one row per check, flagged rows in red."""
    table = Table(
        title=f"Population distributions: {source}, {format_count(report.pets)} pets",
        box=box.SIMPLE_HEAD,
    )
    for column, justify in (
        ("check", "left"),
        ("target", "right"),
        ("measured", "right"),
        ("gap", "right"),
        ("allowed", "right"),
        ("n", "right"),
        ("", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for check in report.checks:
        if check.kind == "mean":
            target, measured = f"{check.target:.2f}", f"{check.measured:.2f}"
        else:
            target, measured = f"{check.target:.2%}", f"{check.measured:.2%}"
        status = Text("FLAGGED", style="bold red") if check.flagged else Text("ok", style="green")
        table.add_row(
            check.name,
            target,
            measured,
            f"{check.gap:.2%}",
            f"{check.allowed:.2%}",
            format_count(check.count),
            status,
        )
    return table


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value} must be above 0 and at most 1")
    return value
