"""The `willow graph` and `willow journey` commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from willow_core.cli_args import positive_int, seed
from willow_core.errors import ConfigError
from willow_core.graph import ontology
from willow_core.units import format_count

# The graph client and the journey runner import the neo4j driver, which only the control
# machine installs, so the handlers import them when they run. A generator host that has only
# the core can then still run every other `willow` command.
if TYPE_CHECKING:
    from willow_core.cli import CommandContext
    from willow_core.graph.schema import GraphCounts
    from willow_core.journey.runner import Funnel, JourneyProgress, JourneyReport, JourneyRunner

ERRORS_SHOWN = 10
"""Errors `willow journey` lists before summing up the rest."""


def register_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add `willow graph ...` and `willow journey` to the `willow` parser."""
    graph = commands.add_parser("graph", help="the Pet Claims graph: schema, counts, server")
    actions = graph.add_subparsers(dest="graph_command", required=True)

    schema = actions.add_parser("schema", help="print the ontology as a .cypher file")
    schema.add_argument(
        "--apply", action="store_true", help="also create missing constraints and indexes"
    )
    schema.set_defaults(handler=_schema)

    counts = actions.add_parser("counts", help="print nodes per label and relationships per type")
    counts.set_defaults(handler=_counts)

    start = actions.add_parser("start", help="start the embedded graph server and leave it running")
    start.set_defaults(handler=_start)

    stop = actions.add_parser("stop", help="stop the embedded graph server")
    stop.set_defaults(handler=_stop)

    journey = commands.add_parser(
        "journey",
        help="run customer journeys over sampled NPCs and write them to the graph",
        description="Sample NPCs and run each through pet, quote, policy and claim, writing the "
        "results to the Pet Claims graph. Running the same --n and --seed again creates nothing "
        "new and completes a run that stopped. Exits 1 when any NPC was not written.",
    )
    journey.add_argument(
        "--n", type=positive_int, metavar="N", help="NPCs to sample (default: [journey] npcs)"
    )
    journey.add_argument(
        "--seed",
        type=seed,
        help="seed of the sample and outcomes (default: [journey] seed)",
    )
    journey.set_defaults(handler=_journey)


def _schema(args: argparse.Namespace, context: CommandContext) -> int:
    console = context.console
    console.print(ontology.schema_cypher(), end="", markup=False, highlight=False, soft_wrap=True)
    if not args.apply:
        return 0

    from willow_core.graph.client import GraphClient
    from willow_core.graph.schema import apply_schema

    graph = GraphClient(context.settings)
    try:
        report = apply_schema(graph)
        context.console.print(
            f"// Applied to {graph.address}: {report.constraints_added} constraints and "
            f"{report.indexes_added} indexes added.",
            markup=False,
            highlight=False,
        )
    finally:
        graph.close()
    return 0


def _counts(args: argparse.Namespace, context: CommandContext) -> int:
    from willow_core.graph.client import GraphClient
    from willow_core.graph.schema import read_counts

    graph = GraphClient(context.settings)
    try:
        # Starting the embedded server takes a few seconds, so a spinner shows the wait.
        with context.console.status(f"Reading counts from {graph.address}…"):
            counts = read_counts(graph)
        address = graph.address
    finally:
        graph.close()
    context.console.print(counts_table(counts, address))
    return 0


def counts_table(counts: GraphCounts, address: str) -> Table:
    """Return the table `willow graph counts` prints."""
    table = Table(title=f"Pet Claims graph at {address}", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("count", justify="right")
    for label, count in counts.nodes.items():
        table.add_row("node", label, format_count(count))
    for rel_type, count in counts.relationships.items():
        table.add_row("relationship", rel_type, format_count(count))
    table.add_row("", "customers with policies", format_count(counts.customers_with_policies))
    for status, count in counts.claim_states.items():
        table.add_row("claim status", status, format_count(count))
    return table


def _start(args: argparse.Namespace, context: CommandContext) -> int:
    from willow_core.graph.client import GraphClient

    graph = GraphClient(context.settings)
    server = graph.embedded
    if server is None:
        raise ConfigError(
            f"[graph] uri is {context.settings.graph.uri}, so there is no embedded server to start"
        )
    info, started = server.ensure_started()
    verb = "Started" if started else "Already running:"
    context.console.print(
        f"{verb} embedded graph server (pid {info.pid}) at {info.uri}. "
        "Stop it with: willow graph stop",
        markup=False,
        highlight=False,
    )
    return 0


def _stop(args: argparse.Namespace, context: CommandContext) -> int:
    from willow_core.graph.client import GraphClient

    graph = GraphClient(context.settings)
    if graph.embedded is None:
        raise ConfigError(
            f"[graph] uri is {context.settings.graph.uri}, so there is no embedded server to stop"
        )
    if graph.embedded.stop():
        context.console.print("Stopped the embedded graph server.")
    else:
        context.console.print("The embedded graph server was not running.")
    return 0


def _journey(args: argparse.Namespace, context: CommandContext) -> int:
    settings, console = context.settings, context.console
    npcs = args.n if args.n is not None else settings.journey.npcs
    seed = args.seed if args.seed is not None else settings.journey.seed

    from willow_core.graph.client import GraphClient
    from willow_core.journey.runner import JourneyRunner

    graph = GraphClient(settings)
    try:
        runner = JourneyRunner(
            context.room.dsn(),
            graph,
            settings.journey,
            connect_timeout=settings.postgres.connect_timeout,
        )
        console.print(
            f"Journeys for {format_count(npcs)} NPCs, seed {seed}, writing to {graph.address}.",
            markup=False,
            highlight=False,
        )
        report = _run_with_progress(runner, npcs, seed, console)
    finally:
        graph.close()

    console.print(funnel_table(report.funnel, title=f"Journey run, seed {report.seed}"))
    console.print(
        f"{format_count(report.funnel.npcs)} journeys written in {report.elapsed_seconds:.1f} s "
        f"({report.journeys_per_second:,.0f}/s, batches of {format_count(report.batch_size)}); "
        f"{format_count(report.nodes_created)} new nodes.",
        markup=False,
        highlight=False,
    )
    _print_errors(report, console)
    if report.stopped is not None:
        console.print(
            f"The run stopped early: {report.stopped}\n"
            f"Run the same command again to complete it: willow journey --n {npcs} --seed {seed}",
            markup=False,
            highlight=False,
        )
    return 0 if report.complete and not report.errors else 1


def _run_with_progress(
    runner: JourneyRunner, npcs: int, seed: int, console: Console
) -> JourneyReport:
    columns = (
        TextColumn("journeys"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[quotes]:,} quotes"),
        TextColumn("{task.fields[policies]:,} policies"),
        TextColumn("{task.fields[claims]:,} claims"),
        TextColumn("{task.fields[errors]:,} errors"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("journeys", total=npcs, quotes=0, policies=0, claims=0, errors=0)

        def show(progress: JourneyProgress) -> None:
            bar.update(
                task,
                completed=progress.processed,
                quotes=progress.funnel.quotes,
                policies=progress.funnel.policies,
                claims=progress.funnel.claims,
                errors=sum(len(error.population_ids) for error in progress.errors),
            )

        return runner.run(npcs, seed, on_progress=show)


def funnel_table(funnel: Funnel, *, title: str) -> Table:
    """Return the funnel as a table: each stage, its count and its conversion from the last."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_column("conversion", justify="right")
    table.add_row("NPCs", format_count(funnel.npcs), "")
    table.add_row("quotes", format_count(funnel.quotes), f"{funnel.quote_rate:.1%} of NPCs")
    table.add_row("policies", format_count(funnel.policies), f"{funnel.policy_rate:.1%} of quotes")
    table.add_row("claims", format_count(funnel.claims), f"{funnel.claim_rate:.1%} of policies")
    for status, count in funnel.claim_states.items():
        table.add_row(f"· {status}", format_count(count), "")
    if funnel.new_pets:
        table.add_row("new pets", format_count(funnel.new_pets), "")
    return table


def _print_errors(report: JourneyReport, console: Console) -> None:
    if not report.errors:
        return
    console.print(
        f"{format_count(report.failed_npcs)} NPCs were not written:", markup=False, highlight=False
    )
    for error in report.errors[:ERRORS_SHOWN]:
        ids = ", ".join(str(i) for i in error.population_ids[:3])
        more = f" and {len(error.population_ids) - 3} more" if len(error.population_ids) > 3 else ""
        console.print(f"  NPC {ids}{more}: {error.message}", markup=False, highlight=False)
    if len(report.errors) > ERRORS_SHOWN:
        console.print(f"  ... and {len(report.errors) - ERRORS_SHOWN} more errors", markup=False)
