"""The coverage view: each quote form field's population source and the share of NPCs that fill
it validly, and the fields with no source at all."""

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Static

from willow_core.errors import WillowError
from willow_core.quote_form.reports import CoverageReport
from willow_core.quote_form.service import QuoteFormService


class CoverageFetched(Message):
    """The coverage of the current form was read."""

    def __init__(self, report: CoverageReport) -> None:
        super().__init__()
        self.report = report


class CoverageFetchFailed(Message):
    """The coverage could not be read (an invalid form file, or the database)."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class CoverageScreen(Screen[None]):
    """Field coverage of the current form file, from its newest validation."""

    DEFAULT_CSS = """
    Screen .screen-keys { dock: bottom; height: 1; background: $panel; padding: 0 1; }
    CoverageScreen VerticalScroll { padding: 0 1; }
    CoverageScreen Static { height: auto; margin: 0 0 1 0; }
    CoverageScreen #coverage-error { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back to failures", id="coverage.close"),
    ]

    def __init__(self, service: QuoteFormService) -> None:
        super().__init__()
        self.service = service

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("Reading field coverage…", id="coverage-title")
            yield Static("", id="coverage-error")
            yield Static("", id="coverage-table")
            yield Static("", id="coverage-uncovered")
        # A hint instead of a Footer: the Footer would list every app key, not just this screen's.
        yield Static("[b]Esc[/b] back to the failure log", classes="screen-keys")

    def on_mount(self) -> None:
        self.load_coverage()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load_coverage(self) -> None:
        try:
            report = self.service.coverage()
        except WillowError as error:
            self.post_message(CoverageFetchFailed(error.message))
            return
        self.post_message(CoverageFetched(report))

    @on(CoverageFetchFailed)
    def show_failure(self, message: CoverageFetchFailed) -> None:
        self.query_one("#coverage-title", Static).update("Field coverage")
        self.query_one("#coverage-error", Static).update(message.message)

    @on(CoverageFetched)
    def show_coverage(self, message: CoverageFetched) -> None:
        report = message.report
        validation = report.validation
        if validation is None:
            title = (
                f"Field coverage of {report.form}: not validated with this form file yet; "
                "press Escape, then v"
            )
        else:
            title = (
                f"Field coverage of {report.form} · validation {validation.validation_id} of "
                f"{validation.npcs_checked:,} NPCs and {validation.pets_checked:,} pets, as of "
                f"{validation.as_of}"
            )
        self.query_one("#coverage-title", Static).update(Text(title, style="bold"))

        table = Table("field", "section", "required", "source", "valid", box=None, padding=(0, 1))
        for field in report.fields:
            share = field.share
            shown = "—" if share is None else f"{share:.1%} of {field.checked:,}"
            table.add_row(
                field.name,
                field.section,
                "yes" if field.required else "no",
                Text(field.source) if field.source else Text("no source", style="bold red"),
                Text(shown, style="" if share is None or share == 1 else "red"),
            )
        self.query_one("#coverage-table", Static).update(table)

        uncovered = report.uncovered
        self.query_one("#coverage-uncovered", Static).update(
            Text.assemble(
                ("No source in the population: ", "bold"),
                ", ".join(
                    f"{field.name}{' (required)' if field.required else ''}" for field in uncovered
                ),
            )
            if uncovered
            else Text("Every field has a source.", style="green")
        )

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
