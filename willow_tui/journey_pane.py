"""The journey pane: runs customer journeys (`j`) and shows the funnel and errors.

`j` asks how many NPCs to sample, then a thread worker runs `JourneyRunner` and posts a message
after every batch. An NPC or batch that fails is listed under the funnel and the run goes on; when
the graph server goes away the run stops, the pane shows why and what was written, and running
the same journey again completes it.
"""

import threading
from collections.abc import Callable
from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, ProgressBar, Static

from willow_core.config import Settings
from willow_core.errors import WillowError
from willow_core.graph.client import GraphClient
from willow_core.graph.schema import GraphCounts
from willow_core.journey.cli import funnel_table
from willow_core.journey.runner import (
    Funnel,
    JourneyProgress,
    JourneyReport,
    JourneyRunner,
    NpcError,
)
from willow_core.units import format_count, format_duration

ERRORS_SHOWN = 6
"""Most recent errors listed under the funnel."""


class JourneysProgressed(Message):
    """A journey run wrote one more batch (or failed to)."""

    def __init__(self, progress: JourneyProgress) -> None:
        super().__init__()
        self.progress = progress


class JourneysFinished(Message):
    """A journey run ended: every batch done, stopped by an error, or cancelled."""

    def __init__(self, report: JourneyReport) -> None:
        super().__init__()
        self.report = report


class JourneysFailed(Message):
    """A journey run could not start."""

    def __init__(self, error: WillowError) -> None:
        super().__init__()
        self.error = error


class JourneyCountScreen(ModalScreen[int | None]):
    """Asks how many NPCs to run journeys for; Enter accepts, Escape cancels."""

    DEFAULT_CSS = """
    JourneyCountScreen { align: center middle; }
    JourneyCountScreen > Vertical {
        width: 60; height: auto; border: round $primary; padding: 1 2; background: $surface;
    }
    JourneyCountScreen #journey-count-error { color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="journey.cancel_count")
    ]

    def __init__(self, default: int) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("How many NPCs should run the journey?")
            yield Input(value=str(self.default), type="integer", id="journey-count")
            yield Static("", id="journey-count-error")

    @on(Input.Submitted, "#journey-count")
    def accept(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdigit() or int(text) <= 0:
            self.query_one("#journey-count-error", Static).update(
                f"{text or 'nothing'!r} is not a number of NPCs; enter a whole number above 0"
            )
            return
        self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)


class JourneyPane(Vertical):
    """The funnel of the current or last journey run, its progress and its errors."""

    DEFAULT_CSS = """
    JourneyPane {
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
        height: 1fr;
    }
    JourneyPane #journey-status { height: auto; }
    JourneyPane #journey-error { color: $error; height: auto; }
    JourneyPane .-hidden { display: none; }
    JourneyPane ProgressBar { margin: 1 0 0 0; }
    JourneyPane #journey-funnel { height: auto; margin: 1 0 0 0; }
    JourneyPane #journey-errors { height: auto; color: $warning; }
    """

    def __init__(
        self,
        graph: GraphClient,
        settings: Settings,
        dsn: Callable[[], str],
        *,
        id: str | None = "journey",
    ) -> None:
        super().__init__(id=id)
        self.graph = graph
        self.settings = settings
        self.dsn = dsn
        self.running = False
        self.has_run = False
        self._stop = threading.Event()
        self.border_title = "Customer journeys"

    def compose(self) -> ComposeResult:
        yield Static(
            f"No journey run yet. Press j to run {format_count(self.settings.journey.npcs)}.",
            id="journey-status",
        )
        yield Static("", id="journey-error", classes="-hidden")
        yield ProgressBar(total=None, show_eta=False, id="journey-progress", classes="-hidden")
        yield Static("", id="journey-funnel")
        yield Static("", id="journey-errors")

    def on_unmount(self) -> None:
        self._stop.set()

    def ask_and_run(self) -> None:
        """Ask how many NPCs, then start the run (unless one is running)."""
        if self.running:
            self.app.notify("A journey run is already in progress.", severity="warning")
            return
        self.app.push_screen(JourneyCountScreen(self.settings.journey.npcs), self.start_journeys)

    def start_journeys(self, npcs: int | None) -> None:
        """Start a run of `npcs` NPCs with the [journey] seed; None does nothing."""
        if npcs is None or self.running:
            return
        self.running = True
        self.has_run = True
        self._stop.clear()
        bar = self.query_one("#journey-progress", ProgressBar)
        bar.update(total=npcs, progress=0)
        bar.remove_class("-hidden")
        self._set_error(None)
        self.query_one("#journey-errors", Static).update("")
        self.query_one("#journey-status", Static).update(
            f"Running journeys for {format_count(npcs)} NPCs, seed {self.settings.journey.seed}…"
        )
        self._run(npcs)

    @work(thread=True, exclusive=True, group="journeys", exit_on_error=False)
    def _run(self, npcs: int) -> None:
        try:
            runner = JourneyRunner(
                self.dsn(),
                self.graph,
                self.settings.journey,
                connect_timeout=self.settings.postgres.connect_timeout,
            )

            def report_progress(progress: JourneyProgress) -> None:
                self.post_message(JourneysProgressed(progress))

            report = runner.run(npcs, on_progress=report_progress, should_stop=self._stop.is_set)
        except WillowError as error:
            self.post_message(JourneysFailed(error))
            return
        self.post_message(JourneysFinished(report))

    @on(JourneysProgressed)
    def show_progress(self, message: JourneysProgressed) -> None:
        progress = message.progress
        self.query_one("#journey-progress", ProgressBar).update(progress=progress.processed)
        self.query_one("#journey-status", Static).update(
            f"Seed {progress.seed}: {format_count(progress.processed)} of "
            f"{format_count(progress.requested)} NPCs, {format_duration(progress.elapsed_seconds)}"
        )
        self._show_funnel(progress.funnel, "This run so far")
        self._show_errors(progress.errors)

    @on(JourneysFinished)
    def show_report(self, message: JourneysFinished) -> None:
        self.show_finished(message.report)

    @on(JourneysFailed)
    def show_start_failure(self, message: JourneysFailed) -> None:
        self.running = False
        self.query_one("#journey-progress", ProgressBar).add_class("-hidden")
        self.query_one("#journey-status", Static).update("The journey run could not start.")
        self._set_error(message.error.message)

    def show_finished(self, report: JourneyReport) -> None:
        """Render a finished or stopped run."""
        self.running = False
        self.query_one("#journey-progress", ProgressBar).update(
            total=report.requested, progress=_processed(report)
        )
        rate = f"{report.journeys_per_second:,.0f}/s"
        written = format_count(report.funnel.npcs)
        if report.stopped is None:
            status = (
                f"Seed {report.seed}: {written} journeys written in "
                f"{format_duration(report.elapsed_seconds)} ({rate})."
            )
            self._set_error(None)
        else:
            status = (
                f"Seed {report.seed}: stopped after {written} of "
                f"{format_count(report.requested)} journeys. Press j and run "
                f"{format_count(report.requested)} again to complete it."
            )
            self._set_error(report.stopped)
        self.query_one("#journey-status", Static).update(status)
        self._show_funnel(report.funnel, "Last run")
        self._show_errors(report.errors)

    def show_graph_funnel(self, counts: GraphCounts) -> None:
        """Show the funnel of everything in the graph while no run has happened here."""
        if self.has_run:
            return
        funnel = Funnel.from_counts(counts)
        if funnel.npcs:
            self._show_funnel(funnel, "All journeys in the graph")

    def _show_funnel(self, funnel: Funnel, title: str) -> None:
        self.query_one("#journey-funnel", Static).update(funnel_table(funnel, title=title))

    def _show_errors(self, errors: tuple[NpcError, ...]) -> None:
        failed = sum(len(error.population_ids) for error in errors)
        if not errors:
            self.query_one("#journey-errors", Static).update("")
            return
        lines = [Text(f"{format_count(failed)} NPCs not written:", style="bold")]
        for error in errors[-ERRORS_SHOWN:]:
            ids = error.population_ids
            who = f"NPC {ids[0]}" if len(ids) == 1 else f"{len(ids)} NPCs from {ids[0]}"
            lines.append(Text(f"{who}: {error.message}"))
        self.query_one("#journey-errors", Static).update(Group(*lines))

    def _set_error(self, message: str | None) -> None:
        error = self.query_one("#journey-error", Static)
        error.update(message or "")
        error.set_class(message is None, "-hidden")


def _processed(report: JourneyReport) -> int:
    if report.stopped is None:
        return report.requested
    return report.funnel.npcs + report.failed_npcs
