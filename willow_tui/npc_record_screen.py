"""The NPC record: a customer and their pets, the quote form as they fill it, and how to
regenerate them. Opened with Enter on a failure; Escape returns to the failure log."""

from typing import Any, ClassVar

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
from willow_core.population.models import CUSTOMER_COLUMNS, PET_COLUMNS
from willow_core.quote_form.reports import FailureRow, NpcRecord
from willow_core.quote_form.service import QuoteFormService
from willow_tui.npc_journey import NpcJourneySection

SECTION_TITLES = {"policyholder": "About you", "pet": "About your pet", "cover": "Your cover"}


class RecordFetched(Message):
    """The NPC record was read and validated."""

    def __init__(self, record: NpcRecord) -> None:
        super().__init__()
        self.record = record


class RecordFetchFailed(Message):
    """The NPC record could not be read."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class NpcRecordScreen(Screen[None]):
    """One NPC's record, validated on the day of the failure that opened it."""

    DEFAULT_CSS = """
    Screen .screen-keys { dock: bottom; height: 1; background: $panel; padding: 0 1; }
    NpcRecordScreen VerticalScroll { padding: 0 1; }
    NpcRecordScreen .record-part { height: auto; margin: 0 0 1 0; }
    NpcRecordScreen #record-error { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Back to failures", id="record.close"),
    ]

    def __init__(self, service: QuoteFormService, failure: FailureRow) -> None:
        super().__init__()
        self.service = service
        self.failure = failure

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static(
                f"Reading NPC {self.failure.customer_id}…", id="record-title", classes="record-part"
            )
            yield Static("", id="record-error", classes="record-part")
            yield Static("", id="record-customer", classes="record-part")
            yield Static("", id="record-pets", classes="record-part")
            yield NpcJourneySection(
                self.failure.customer_id, getattr(self.app, "graph", None), classes="record-part"
            )
            yield Static("", id="record-form", classes="record-part")
            yield Static("", id="record-regenerate", classes="record-part")
        # A hint instead of a Footer: the Footer would list every app key, not just this screen's.
        yield Static("[b]Esc[/b] back to the failure log", classes="screen-keys")

    def on_mount(self) -> None:
        self.load_record()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load_record(self) -> None:
        try:
            record = self.service.npc_record(self.failure.customer_id, self.failure.as_of)
        except WillowError as error:
            self.post_message(RecordFetchFailed(error.message))
            return
        self.post_message(RecordFetched(record))

    @on(RecordFetchFailed)
    def show_failure(self, message: RecordFetchFailed) -> None:
        self.query_one("#record-error", Static).update(message.message)

    @on(RecordFetched)
    def show_record(self, message: RecordFetched) -> None:
        record = message.record
        customer = record.customer
        failing = len(record.failures)
        self.query_one("#record-title", Static).update(
            Text.assemble(
                (f"NPC {customer['customer_id']}", "bold"),
                f" · {customer['title']} {customer['first_name']} {customer['last_name']} · "
                f"{len(record.pets)} pet{'s' if len(record.pets) != 1 else ''} · opened from "
                f"{self.failure.field} ({self.failure.rule})\n",
                f"{record.form}, as of {record.as_of}: ",
                (f"{failing} failing answer{'s' if failing != 1 else ''}", "bold red")
                if failing
                else ("every answer valid", "bold green"),
            )
        )
        self.query_one("#record-customer", Static).update(_customer_table(customer))
        self.query_one("#record-pets", Static).update(_pets_table(record.pets))
        self.query_one("#record-form", Static).update(_form_table(record))
        self.query_one("#record-regenerate", Static).update(_regeneration(record))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


def _customer_table(customer: dict[str, Any]) -> Table:
    table = Table(
        "column",
        "value",
        title="Customer",
        title_justify="left",
        title_style="bold",
        box=None,
        padding=(0, 2),
    )
    for column in CUSTOMER_COLUMNS:
        table.add_row(column, _shown(customer[column]))
    table.add_row("run_id", _shown(customer["run_id"]))
    table.add_row("batch_index", _shown(customer["batch_index"]))
    return table


def _pets_table(pets: list[dict[str, Any]]) -> Table | Text:
    if not pets:
        return Text.assemble(
            ("Pets", "bold"), "\nnone: the journey gives this NPC a pet before a quote"
        )
    table = Table(
        *PET_COLUMNS,
        title="Pets",
        title_justify="left",
        title_style="bold",
        box=None,
        padding=(0, 1),
    )
    for pet in pets:
        table.add_row(*(_shown(pet[column]) for column in PET_COLUMNS))
    return table


def _form_table(record: NpcRecord) -> Table:
    table = Table(
        "section",
        "question",
        "answer",
        "check",
        title="Quote form as this NPC fills it",
        title_justify="left",
        title_style="bold",
        box=None,
        padding=(0, 1),
    )
    for answer in record.answers:
        section = SECTION_TITLES.get(answer.section, answer.section)
        if answer.pet_id is not None:
            section = f"{section} ({answer.pet_id})"
        if answer.valid:
            check = Text("✓ valid", style="green")
        else:
            check = Text(
                "✗ "
                + "; ".join(f"{failure.rule}: {failure.message}" for failure in answer.failures),
                style="bold red",
            )
        shown = _shown(answer.value)
        if answer.normalised is not None:
            shown = f"{shown} → {answer.normalised}"
        table.add_row(section, answer.label, shown, check)
    return table


def _regeneration(record: NpcRecord) -> Text:
    regeneration = record.regeneration
    if regeneration is None:
        return Text.assemble(
            ("Regenerate", "bold"), "\nthe run or batch of this NPC is no longer recorded"
        )
    return Text.assemble(
        ("Regenerate", "bold"),
        f"\n{regeneration.describe()}\n",
        ("from willow_core.population.generator import generate_batch, profile_from_run\n", "dim"),
        (regeneration.call(), "dim"),
    )


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("\n", "⏎")
