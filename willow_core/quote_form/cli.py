"""The `willow validate`, `willow coverage`, `willow npc` and `willow milestones` commands."""

import argparse
import threading
from datetime import date
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
from rich.text import Text

from willow_core.cli_args import non_negative_int, positive_int
from willow_core.errors import ConfigError
from willow_core.quote_form.reports import CoverageReport, NpcRecord
from willow_core.quote_form.service import QuoteFormService
from willow_core.quote_form.validation import Selection, ValidationProgress, ValidationSummary
from willow_core.units import format_count

if TYPE_CHECKING:
    from willow_core.cli import CommandContext

MAX_IDS = 10_000_000
"""Most ids `--ids` accepts at once, ranges included."""


def register_commands(commands: "argparse._SubParsersAction[Any]") -> None:
    """Add the quote form commands to the `willow` parser."""
    validate = commands.add_parser(
        "validate",
        help="validate NPCs against the quote form and log the failures",
        description="Validate NPCs against the quote form, log every failure in PostgreSQL and "
        "print counts by field. Exits 1 when any NPC fails.",
    )
    validate.set_defaults(handler=_validate)
    which = validate.add_mutually_exclusive_group()
    which.add_argument(
        "--sample",
        type=positive_int,
        metavar="N",
        help="validate N NPCs drawn at random (default: [quote_form] sample_size)",
    )
    which.add_argument("--all", action="store_true", help="validate every committed NPC")
    which.add_argument(
        "--ids",
        nargs="+",
        type=_id_list,
        metavar="ID",
        help="validate these NPCs; ranges as FIRST-LAST and commas allowed, e.g. 5 17 200-299",
    )
    validate.add_argument(
        "--seed", type=non_negative_int, help="seed of the sample (default: random)"
    )
    validate.add_argument(
        "--as-of",
        type=_day,
        metavar="YYYY-MM-DD",
        help="day that ages and cover dates count from (default: today)",
    )

    coverage = commands.add_parser(
        "coverage",
        help="show each form field's population source and the share of NPCs that fill it",
        description="Show, for each quote form field, its source in the population and the "
        "share of NPCs that filled it validly in the newest validation with this form file. "
        "Validates a sample first when there is none, or when --sample is given.",
    )
    coverage.set_defaults(handler=_coverage)
    coverage.add_argument(
        "--sample", type=positive_int, metavar="N", help="validate a fresh sample of N NPCs first"
    )

    npc = commands.add_parser(
        "npc", help="show one NPC, its quote form answers and how to regenerate it"
    )
    npc.set_defaults(handler=_npc)
    npc.add_argument(
        "customer_id", type=non_negative_int, metavar="ID", help="the NPC's customer id"
    )
    npc.add_argument(
        "--as-of",
        type=_day,
        metavar="YYYY-MM-DD",
        help="day that ages and cover dates count from (default: today)",
    )

    milestones = commands.add_parser(
        "milestones", help="show the population milestones and whether their checks passed"
    )
    milestones.set_defaults(handler=_milestones)


def _validate(args: argparse.Namespace, context: "CommandContext") -> int:
    service = QuoteFormService(context.room)
    if args.all:
        selection = Selection("all")
    elif args.ids:
        ids = tuple(customer_id for group in args.ids for customer_id in group)
        if len(ids) > MAX_IDS:
            raise ConfigError(f"--ids names {len(ids):,} NPCs; give at most {MAX_IDS:,}")
        selection = Selection("ids", ids=ids)
    else:
        size = args.sample or service.settings.sample_size
        selection = Selection("sample", sample_size=size, seed=args.seed)

    summary = run_with_progress(service, selection, context.console, as_of=args.as_of)
    print_summary(summary, context.console)
    return 1 if summary.npcs_failed else 0


def run_with_progress(
    service: QuoteFormService, selection: Selection, console: Console, *, as_of: date | None
) -> ValidationSummary:
    """Validate with a rich progress bar; Ctrl-C stops after the current chunk."""
    stop = threading.Event()
    columns = (
        TextColumn("validating"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("NPCs · {task.fields[rate]:,.0f}/s · {task.fields[failed]:,} failing"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("validate", total=None, rate=0.0, failed=0)

        def show(progress: ValidationProgress) -> None:
            bar.update(
                task,
                total=progress.total,
                completed=progress.done,
                rate=progress.rate,
                failed=progress.npcs_failed,
            )

        try:
            return service.validate(
                selection, as_of=as_of, on_progress=show, should_stop=stop.is_set
            )
        except KeyboardInterrupt:
            stop.set()
            raise


def print_summary(summary: ValidationSummary, console: Console) -> None:
    """Print a validation's counts and its failures by field."""
    if summary.missing_ids:
        shown = ", ".join(str(i) for i in summary.missing_ids[:10])
        more = (
            f" and {len(summary.missing_ids) - 10:,} more" if len(summary.missing_ids) > 10 else ""
        )
        console.print(f"Not in any committed batch, skipped: {shown}{more}.", highlight=False)
    if summary.npcs_checked == 0:
        console.print("No NPCs to validate. Generate some with: willow generate --total N")
        return

    share = summary.npcs_failed / summary.npcs_checked
    console.print(
        f"Validation {summary.validation_id} {summary.state}: "
        f"{format_count(summary.npcs_checked)} NPCs and {format_count(summary.pets_checked)} pets "
        f"in {summary.elapsed:.1f} s ({summary.rate:,.0f} NPCs/s); "
        f"{format_count(summary.npcs_failed)} NPCs fail ({share:.1%}), "
        f"{format_count(summary.failures)} failures logged.",
        highlight=False,
    )
    if summary.failures_by_field:
        table = Table("field", "failures", box=box.SIMPLE_HEAD)
        for name, count in sorted(summary.failures_by_field.items(), key=lambda item: -item[1]):
            table.add_row(name, format_count(count))
        console.print(table)


def _coverage(args: argparse.Namespace, context: "CommandContext") -> int:
    service = QuoteFormService(context.room)
    report = service.coverage()
    if args.sample or report.validation is None:
        size = args.sample or service.settings.sample_size
        if report.validation is None:
            context.console.print(
                f"No validation with this form file yet; validating a sample of {size:,} NPCs.",
                highlight=False,
            )
        run_with_progress(
            service, Selection("sample", sample_size=size), context.console, as_of=None
        )
        report = service.coverage()
    context.console.print(coverage_table(report))
    if report.uncovered:
        names = ", ".join(
            f"{field.name}{' (required)' if field.required else ''}" for field in report.uncovered
        )
        context.console.print(f"No source in the population: {names}", highlight=False)
    return 0


def coverage_table(report: CoverageReport) -> Table:
    """Return the coverage report as a rich table."""
    validation = report.validation
    caption = (
        f"{report.form} · validation {validation.validation_id} of "
        f"{validation.npcs_checked:,} NPCs and {validation.pets_checked:,} pets "
        f"on {validation.as_of}"
        if validation
        else f"{report.form} · not validated yet"
    )
    table = Table(
        "field", "section", "required", "source", "valid", box=box.SIMPLE_HEAD, caption=caption
    )
    for field in report.fields:
        share = field.share
        shown = "-" if share is None else f"{share:.1%} of {field.checked:,}"
        style = "" if share is None or share == 1 else "red"
        table.add_row(
            field.name,
            field.section,
            "yes" if field.required else "no",
            Text(field.source) if field.source else Text("no source", style="bold red"),
            Text(shown, style=style),
        )
    return table


def _npc(args: argparse.Namespace, context: "CommandContext") -> int:
    record = QuoteFormService(context.room).npc_record(args.customer_id, args.as_of)
    print_record(record, context.console)
    return 1 if record.failures else 0


def print_record(record: NpcRecord, console: Console) -> None:
    """Print one NPC with its quote form answers and how to regenerate it."""
    customer = record.customer
    console.print(
        f"NPC {customer['customer_id']}: {customer['title']} {customer['first_name']} "
        f"{customer['last_name']} · {len(record.pets)} pet(s)",
        highlight=False,
    )
    table = Table(
        "section",
        "field",
        "answer",
        "check",
        box=box.SIMPLE_HEAD,
        caption=f"{record.form} · as of {record.as_of}",
    )
    for answer in record.answers:
        section = answer.section if answer.pet_id is None else f"pet {answer.pet_id}"
        check = (
            Text("valid", style="green")
            if answer.valid
            else Text("; ".join(f"{f.rule}: {f.message}" for f in answer.failures), style="red")
        )
        shown = _shown(answer.value)
        if answer.normalised is not None:
            shown = f"{shown} → {answer.normalised}"
        table.add_row(section, answer.label, shown, check)
    console.print(table)
    if record.regeneration is not None:
        console.print(f"Regenerate: {record.regeneration.describe()}", highlight=False)
        console.print(f"  {record.regeneration.call()}", highlight=False, markup=False)


def _milestones(args: argparse.Namespace, context: "CommandContext") -> int:
    population, statuses = QuoteFormService(context.room).milestones()
    table = Table(
        "population",
        "check",
        "reached",
        "result",
        "detail",
        box=box.SIMPLE_HEAD,
        caption=f"population: {population:,} NPCs",
    )
    for status in statuses:
        result_style = {"passed": "green", "failed": "red"}.get(status.state, "dim")
        table.add_row(
            f"{status.milestone.population:,}",
            status.milestone.title,
            "yes" if status.reached else "no",
            Text(status.state, style=result_style),
            status.latest.detail if status.latest else status.milestone.description,
        )
    context.console.print(table)
    return 0


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("\n", "⏎")


def _id_list(text: str) -> list[int]:
    """Parse "5", "5,17" or "200-299" into ids."""
    ids: list[int] = []
    for part in filter(None, text.split(",")):
        first, dash, last = part.partition("-")
        if not dash:
            ids.append(non_negative_int(first))
            continue
        low, high = non_negative_int(first), non_negative_int(last)
        if high < low:
            raise argparse.ArgumentTypeError(f"range {part!r} ends before it starts")
        if high - low >= MAX_IDS:
            raise argparse.ArgumentTypeError(f"range {part!r} has more than {MAX_IDS:,} ids")
        ids.extend(range(low, high + 1))
    return ids


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date as YYYY-MM-DD") from None
