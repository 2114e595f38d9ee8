"""The Willow control room: a Textual app over the headless core in willow_core.

Panes sit side by side in `#panes`. Every database or host call runs in a thread worker that
calls `ControlRoom` and posts the result back as a message, so the UI thread only renders.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Header
from textual.worker import Worker, WorkerState

from willow_core import __version__
from willow_core.config import Settings, load_settings
from willow_core.control import ControlRoom
from willow_core.errors import ConfigError, HostError, WillowError
from willow_core.graph.client import GraphClient
from willow_core.paths import data_dir
from willow_core.quote_form.service import QuoteFormService
from willow_core.store.runs import Run, RunProgress
from willow_tui.graph_pane import GraphPane
from willow_tui.help_screen import HelpScreen
from willow_tui.host_screens import ConfirmStopScreen, DeployScreen, HostStateFetched, RunStopped
from willow_tui.journey_pane import JourneyPane
from willow_tui.pet_claims import PetClaimsColumn
from willow_tui.population_pane import PopulationPane
from willow_tui.validation_pane import ValidationPane

log = logging.getLogger("willow.tui")


class ProgressFetched(Message):
    """A poll of the current run succeeded."""

    def __init__(self, progress: RunProgress | None, log_lines: list[str]) -> None:
        super().__init__()
        self.progress = progress
        self.log_lines = log_lines


class ProgressFetchFailed(Message):
    """A poll of the current run failed; the next poll retries."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class RunCommandSucceeded(Message):
    """A start, pause or resume request was accepted."""

    def __init__(self, verb: str, run: Run) -> None:
        super().__init__()
        self.verb = verb
        self.run = run


RECORD_KEY = Binding(
    "enter",
    "select_cursor",
    "Open record",
    tooltip="Open the selected failure's NPC record; Esc returns to the failure log",
)
"""The failure table's own Enter binding, listed in the help with the app's keys."""


class WillowApp(App[None]):
    """The control room."""

    TITLE = "Willow control room"
    CSS = """
    #panes { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "s",
            "start_run",
            "Start run",
            id="run.start",
            tooltip="Start a generation run with the [generation] defaults",
        ),
        Binding(
            "p",
            "pause_run",
            "Pause",
            id="run.pause",
            tooltip="Pause the run after each worker commits its current batch",
        ),
        Binding(
            "r",
            "resume_run",
            "Resume",
            id="run.resume",
            tooltip="Resume a paused or crashed run from its next uncommitted batch",
        ),
        Binding(
            "v",
            "validate",
            "Validate",
            id="validation.run",
            tooltip="Validate a sample of NPCs against the quote form ([quote_form] sample_size)",
        ),
        Binding(
            "g",
            "refresh_graph",
            "Graph",
            id="graph.refresh",
            tooltip="Refresh the graph counts, starting the embedded graph server if needed",
        ),
        Binding(
            "j",
            "run_journeys",
            "Journeys",
            id="journey.run",
            tooltip="Ask how many NPCs, then run their journeys into the graph ([journey] seed)",
        ),
        Binding(
            "x",
            "stop_run",
            "Stop",
            id="run.stop",
            tooltip="Stop the run now: SIGTERM to its workers' recorded PIDs (asks first)",
        ),
        Binding(
            "d",
            "deploy",
            "Deploy",
            id="host.deploy",
            tooltip="Build Willow's wheel and install it into the venv on the [gpu_host] host",
        ),
        Binding("question_mark", "help", "Keys", id="app.help", tooltip="List every key"),
        Binding(
            "q",
            "quit",
            "Quit",
            id="app.quit",
            tooltip="Quit the control room; running generators keep running",
        ),
    ]

    def __init__(self, settings: Settings, room: ControlRoom | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.room = room or ControlRoom(settings)
        self.graph = GraphClient(settings)
        self.sub_title = self.room.database_label

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            yield PopulationPane(database=self.room.database_label, host=self.room.host.name)
            yield ValidationPane(
                QuoteFormService(self.room), sample_size=self.settings.quote_form.sample_size
            )
            yield PetClaimsColumn(self.graph, self.room, self.settings)
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_progress()
        self.set_interval(self.settings.tui.refresh_seconds, self.refresh_progress)
        self.refresh_host_state()
        self.set_interval(1.0, self.refresh_host_state)

    def on_unmount(self) -> None:
        # Only the connection closes: detached generator workers keep running.
        self.room.close()
        # Stops the embedded graph server if this app started it.
        self.graph.close()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def refresh_progress(self) -> None:
        """Fetch the latest run's progress and log tail, off the UI thread."""
        try:
            progress = self.room.progress()
            try:
                lines = (
                    self.room.log_tail(progress, self.settings.tui.log_lines) if progress else []
                )
            except HostError as error:
                # The run's state comes from PostgreSQL; only the log needs the host.
                lines = [f"(log unavailable: {error.message})"]
        except WillowError as error:
            self.post_message(ProgressFetchFailed(f"{error.message} (retrying)"))
            return
        self.post_message(ProgressFetched(progress, lines))

    # A poll can finish after the app has begun to exit and removed its panes, so these handlers
    # update whichever population pane exists rather than requiring one.
    @on(ProgressFetched)
    def show_progress(self, message: ProgressFetched) -> None:
        for pane in self.query(PopulationPane):
            pane.show_progress(message.progress, message.log_lines)

    @on(ProgressFetchFailed)
    def show_progress_failure(self, message: ProgressFetchFailed) -> None:
        for pane in self.query(PopulationPane):
            pane.show_error(message.message)

    @work(thread=True, exclusive=True, group="host-state", exit_on_error=False)
    def refresh_host_state(self) -> None:
        """Read the generator host's link state for the header, without contacting the host."""
        self.post_message(HostStateFetched(self.room.host.name, self.room.host_state()))

    @on(HostStateFetched)
    def show_host_state(self, message: HostStateFetched) -> None:
        self.sub_title = message.header(self.room.database_label)

    def action_deploy(self) -> None:
        self.push_screen(DeployScreen(self.room))

    def action_stop_run(self) -> None:
        def stop_if_confirmed(confirmed: bool | None) -> None:
            if confirmed:
                self._stop_run()

        self.push_screen(ConfirmStopScreen(self.room.host.name), stop_if_confirmed)

    @work(thread=True, group="run-command", exit_on_error=False)
    def _stop_run(self) -> None:
        self.post_message(RunStopped(self.room.stop(), self.room.host.name))

    @on(RunStopped)
    def report_run_stopped(self, message: RunStopped) -> None:
        self.notify(message.describe())
        self.refresh_progress()

    def action_start_run(self) -> None:
        self._run_command("start")

    def action_pause_run(self) -> None:
        self._run_command("pause")

    def action_resume_run(self) -> None:
        self._run_command("resume")

    def action_validate(self) -> None:
        self.query_one(ValidationPane).start_validation()

    def action_refresh_graph(self) -> None:
        self.query_one(GraphPane).refresh_counts(start=True)

    def action_run_journeys(self) -> None:
        self.query_one(JourneyPane).ask_and_run()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self._all_bindings()))

    def _all_bindings(self) -> list[BindingType]:
        bindings: list[BindingType] = list(self.BINDINGS)
        for pane in self.query("#panes > *"):
            bindings.extend(getattr(pane, "BINDINGS", []))
        bindings.append(RECORD_KEY)
        return bindings

    @work(thread=True, group="run-command", exit_on_error=False)
    def _run_command(self, verb: str) -> None:
        if verb == "start":
            run = self.room.start_run()
        elif verb == "pause":
            run = self.room.pause()
        else:
            run = self.room.resume()
        self.post_message(RunCommandSucceeded(verb, run))

    @on(RunCommandSucceeded)
    def report_run_command(self, message: RunCommandSucceeded) -> None:
        texts = {
            "start": f"Started run {message.run.run_id} on {self.room.host.name}.",
            "pause": f"Pausing run {message.run.run_id} after the current batch.",
            "resume": f"Resumed run {message.run.run_id} on {self.room.host.name}.",
        }
        self.notify(texts[message.verb])
        self.refresh_progress()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Route every worker failure to a toast, so no error ends the app."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, WillowError):
            self.notify(error.message, title=error.title, severity="error", timeout=8)
        else:
            log.error("worker %s failed", event.worker.name, exc_info=error)
            self.notify(
                f"{type(error).__name__}: {error}", title="Unexpected error", severity="error"
            )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `willow-tui`."""
    parser = argparse.ArgumentParser(prog="willow-tui", description="Willow control room")
    parser.add_argument("--version", action="version", version=f"willow-tui {__version__}")
    parser.add_argument(
        "--config", type=Path, help="config file (default: $WILLOW_CONFIG, ./config.toml, user dir)"
    )
    args = parser.parse_args(argv)

    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"willow-tui: {error.message}", file=sys.stderr)
        return 2

    logging.basicConfig(
        filename=data_dir() / "willow-tui.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    WillowApp(settings).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
