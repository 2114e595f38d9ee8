"""The validation pane: the quote form failure log, counts, milestones and the `v` validation.

Every database call runs in a thread worker that calls `QuoteFormService` and posts the result as
a message. Enter on a failure opens `NpcRecordScreen`; `c` opens `CoverageScreen`.
"""

import threading
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, ProgressBar, Static

from willow_core.errors import WillowError
from willow_core.milestones import MilestoneStatus
from willow_core.quote_form.reports import FailureLog, FailureRow
from willow_core.quote_form.service import QuoteFormService
from willow_core.quote_form.validation import Selection, ValidationProgress, ValidationSummary
from willow_core.units import format_count
from willow_tui.coverage_screen import CoverageScreen
from willow_tui.npc_record_screen import NpcRecordScreen

FAILURE_ROWS = 500
"""Failures the pane lists; the filter searches the whole log."""

MILESTONE_STYLES = {"passed": "bold green", "failed": "bold red", "not run": "dim"}


class FailureLogFetched(Message):
    """The failure log, counts and milestones were read."""

    def __init__(self, log: FailureLog, population: int, milestones: list[MilestoneStatus]) -> None:
        super().__init__()
        self.log = log
        self.population = population
        self.milestones = milestones


class FailureLogFetchFailed(Message):
    """Reading the failure log failed; the next refresh retries."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class ValidationProgressed(Message):
    """A validation wrote one more chunk."""

    def __init__(self, progress: ValidationProgress) -> None:
        super().__init__()
        self.progress = progress


class ValidationFinished(Message):
    """A validation ended (finished or cancelled)."""

    def __init__(self, summary: ValidationSummary) -> None:
        super().__init__()
        self.summary = summary


class ValidationFailed(Message):
    """A validation could not run or stopped with an error."""

    def __init__(self, error: WillowError) -> None:
        super().__init__()
        self.error = error


class ValidationPane(Vertical):
    """Failures newest first with counts by field and rule, a filter, and the milestones."""

    DEFAULT_CSS = """
    ValidationPane {
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
        height: 1fr;
        width: 1fr;
    }
    ValidationPane #validation-status { height: auto; }
    ValidationPane #validation-error { color: $error; height: auto; }
    ValidationPane .-hidden { display: none; }
    ValidationPane #validation-counts { height: auto; color: $text-muted; margin: 1 0 0 0; }
    ValidationPane #validation-filter { margin: 1 0 0 0; }
    ValidationPane #validation-failures { height: 1fr; margin: 1 0 0 0; }
    ValidationPane #validation-milestones { height: auto; margin: 1 0 0 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "filter",
            "Filter",
            id="validation.filter",
            tooltip="Filter failures by NPC id, field, rule, value or message",
        ),
        Binding(
            "c",
            "coverage",
            "Coverage",
            id="validation.coverage",
            tooltip="Show each form field's source and the share of NPCs that fill it",
        ),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="validation.clear_filter",
            show=False,
            tooltip="Clear the failure filter",
        ),
    ]

    def __init__(
        self, service: QuoteFormService, *, sample_size: int, id: str | None = "validation"
    ) -> None:
        super().__init__(id=id)
        self.service = service
        self.sample_size = sample_size
        self.filter_text = ""
        self._validating = False
        self._stop_requested = threading.Event()
        self._failure_rows: list[FailureRow] = []
        self._validation_error: str | None = None
        """Why the last validation failed; shown until the next one starts."""
        self.border_title = "Validation"

    def compose(self) -> ComposeResult:
        yield Static("Reading the validation log…", id="validation-status")
        yield Static("", id="validation-error", classes="-hidden")
        yield ProgressBar(total=None, show_eta=False, id="validation-progress", classes="-hidden")
        yield Static("", id="validation-counts")
        yield Input(
            placeholder="Filter: NPC id, field, rule, value or message (Enter applies, Esc clears)",
            id="validation-filter",
            classes="-hidden",
            disabled=True,  # a hidden Input still takes focus unless disabled
        )
        table: DataTable[str | Text] = DataTable(id="validation-failures", cursor_type="row")
        table.add_columns("NPC", "pet", "field", "rule", "value", "message")
        yield table
        yield Static("", id="validation-milestones")

    def on_mount(self) -> None:
        self.refresh_log()
        # Picks up validations run elsewhere, such as `willow validate` in a shell.
        self.set_interval(10, self.refresh_log)

    def on_unmount(self) -> None:
        self._stop_requested.set()

    # Reading the log

    @work(thread=True, exclusive=True, group="validation-log", exit_on_error=False)
    def refresh_log(self) -> None:
        """Read the failure log (with the current filter), counts and milestones."""
        try:
            log = self.service.failure_log(self.filter_text, FAILURE_ROWS)
            population, milestones = self.service.milestones()
        except WillowError as error:
            self.post_message(FailureLogFetchFailed(f"{error.message} (retrying)"))
            return
        self.post_message(FailureLogFetched(log, population, milestones))

    @on(FailureLogFetched)
    def show_log(self, message: FailureLogFetched) -> None:
        self._set_error(self._validation_error)
        log = message.log
        if not self._validating:
            self.query_one("#validation-status", Static).update(self._describe_latest(log))
        self.query_one("#validation-counts", Static).update(_describe_counts(log))
        self._fill_table(log.rows)
        self.query_one("#validation-milestones", Static).update(
            _milestone_table(message.population, message.milestones)
        )

    @on(FailureLogFetchFailed)
    def show_log_failure(self, message: FailureLogFetchFailed) -> None:
        self._set_error(message.message)

    def _describe_latest(self, log: FailureLog) -> Text:
        latest = log.latest
        if latest is None:
            return Text.from_markup(
                f"No validation yet. Press [b]v[/b] to validate a sample of "
                f"{format_count(self.sample_size)} NPCs."
            )
        share = latest.npcs_failed / latest.npcs_checked if latest.npcs_checked else 0.0
        return Text.assemble(
            (f"Validation {latest.validation_id}", "bold"),
            f" {latest.shown_state} · {latest.mode} · {latest.form_name} v{latest.form_version}"
            f" · as of {latest.as_of}\n",
            f"{format_count(latest.npcs_checked)} NPCs, {format_count(latest.pets_checked)} pets"
            " · ",
            (
                f"{format_count(latest.npcs_failed)} failing ({share:.1%})",
                "bold red" if latest.npcs_failed else "bold green",
            ),
        )

    def _fill_table(self, rows: list[FailureRow]) -> None:
        table: DataTable[str | Text] = self.query_one("#validation-failures", DataTable)
        selected = self.selected_failure()
        previous_row = table.cursor_row
        table.clear()
        self._failure_rows = rows
        for row in rows:
            table.add_row(
                str(row.customer_id),
                "" if row.pet_id is None else str(row.pet_id),
                row.field,
                row.rule,
                Text(_one_line(row.value), overflow="ellipsis", no_wrap=True),
                Text(row.message, overflow="ellipsis", no_wrap=True),
                key=str(row.failure_id),
            )
        if not rows:
            return
        # Keep the cursor on the same failure across refreshes, so Escape from a record returns
        # to the row that was opened.
        if selected is not None:
            for index, row in enumerate(rows):
                if row.failure_id == selected.failure_id:
                    table.move_cursor(row=index, animate=False)
                    return
        table.move_cursor(row=min(previous_row, len(rows) - 1), animate=False)

    def selected_failure(self) -> FailureRow | None:
        """Return the failure under the table's cursor, if any."""
        table: DataTable[str | Text] = self.query_one("#validation-failures", DataTable)
        if not self._failure_rows or not 0 <= table.cursor_row < len(self._failure_rows):
            return None
        return self._failure_rows[table.cursor_row]

    def _set_error(self, message: str | None) -> None:
        error = self.query_one("#validation-error", Static)
        error.update(message or "")
        error.set_class(message is None, "-hidden")

    # Validating

    def start_validation(self) -> None:
        """Validate a sample of NPCs, unless a validation is already running."""
        if self._validating:
            self.app.notify("A validation is already running.", severity="warning")
            return
        self._validating = True
        self._stop_requested.clear()
        self._validation_error = None
        self._set_error(None)
        bar = self.query_one("#validation-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.remove_class("-hidden")
        self.query_one("#validation-status", Static).update(
            f"Validating a sample of {format_count(self.sample_size)} NPCs…"
        )
        self._validate(Selection("sample", sample_size=self.sample_size))

    @work(thread=True, exclusive=True, group="validation-run", exit_on_error=False)
    def _validate(self, selection: Selection) -> None:
        try:
            summary = self.service.validate(
                selection,
                on_progress=self._report_progress,
                should_stop=self._stop_requested.is_set,
            )
        except WillowError as error:
            self.post_message(ValidationFailed(error))
            return
        self.post_message(ValidationFinished(summary))

    def _report_progress(self, progress: ValidationProgress) -> None:
        self.post_message(ValidationProgressed(progress))

    @on(ValidationProgressed)
    def show_validation_progress(self, message: ValidationProgressed) -> None:
        progress = message.progress
        self.query_one("#validation-progress", ProgressBar).update(
            total=max(progress.total, 1), progress=progress.done
        )
        self.query_one("#validation-status", Static).update(
            f"Validating: {format_count(progress.done)} of {format_count(progress.total)} NPCs · "
            f"{progress.rate:,.0f}/s · {format_count(progress.npcs_failed)} failing"
        )

    @on(ValidationFinished)
    def show_validation_finished(self, message: ValidationFinished) -> None:
        summary = message.summary
        self._end_validation()
        share = summary.npcs_failed / summary.npcs_checked if summary.npcs_checked else 0.0
        self.app.notify(
            f"Validated {format_count(summary.npcs_checked)} NPCs in {summary.elapsed:.1f} s: "
            f"{format_count(summary.npcs_failed)} failing ({share:.1%})."
        )
        self.refresh_log()

    @on(ValidationFailed)
    def show_validation_failed(self, message: ValidationFailed) -> None:
        self._end_validation()
        self._validation_error = f"{message.error.title}: {message.error.message}"
        self._set_error(self._validation_error)
        self.app.notify(
            message.error.message, title=message.error.title, severity="error", timeout=8
        )
        self.refresh_log()

    def _end_validation(self) -> None:
        self._validating = False
        self.query_one("#validation-progress", ProgressBar).add_class("-hidden")

    # Filter, record and coverage

    def action_filter(self) -> None:
        field = self.query_one("#validation-filter", Input)
        field.disabled = False
        field.remove_class("-hidden")
        field.focus()

    @on(Input.Submitted, "#validation-filter")
    def apply_filter(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        self.border_subtitle = f"filter: {self.filter_text}" if self.filter_text else ""
        self.query_one("#validation-failures", DataTable).focus()
        self.refresh_log()

    def action_clear_filter(self) -> None:
        field = self.query_one("#validation-filter", Input)
        if not self.filter_text and field.has_class("-hidden"):
            return
        field.value = ""
        field.add_class("-hidden")
        field.disabled = True
        self.filter_text = ""
        self.border_subtitle = ""
        self.query_one("#validation-failures", DataTable).focus()
        self.refresh_log()

    @on(DataTable.RowSelected, "#validation-failures")
    def open_record(self, event: DataTable.RowSelected) -> None:
        failure = self.selected_failure()
        if failure is None:
            return
        self.app.push_screen(NpcRecordScreen(self.service, failure))

    def action_coverage(self) -> None:
        self.app.push_screen(CoverageScreen(self.service))


def _describe_counts(log: FailureLog) -> Text:
    if not log.counts:
        return Text("")
    by_field: dict[str, int] = {}
    by_rule: dict[str, int] = {}
    for count in log.counts:
        by_field[count.field] = by_field.get(count.field, 0) + count.failures
        by_rule[count.rule] = by_rule.get(count.rule, 0) + count.failures

    def joined(counts: dict[str, int]) -> str:
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return " · ".join(f"{name} {format_count(total)}" for name, total in ordered)

    return Text.assemble(
        ("By field ", "bold"), joined(by_field), "\n", ("By rule  ", "bold"), joined(by_rule)
    )


def _milestone_table(population: int, statuses: list[MilestoneStatus]) -> Table:
    table = Table(
        "NPCs",
        "check",
        "reached",
        "result",
        box=None,
        padding=(0, 1),
        title=f"Milestones · population {format_count(population)}",
        title_justify="left",
        title_style="bold",
    )
    for status in statuses:
        ran = f" {status.latest.ran_at:%Y-%m-%d}" if status.latest else ""
        table.add_row(
            _short_count(status.milestone.population),
            status.milestone.title,
            "yes" if status.reached else "no",
            Text(status.state + ran, style=MILESTONE_STYLES[status.state]),
        )
    return table


def _short_count(value: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "K")):
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    return format_count(value)


def _one_line(value: str | None) -> str:
    if value is None:
        return "—"
    return value.replace("\n", "⏎")
