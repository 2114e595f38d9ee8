"""The Willow control room: a Textual app over the headless core in willow_core.

Panes sit side by side in `#panes`. Every database or host call runs in a thread worker that
calls `ControlRoom` and posts the result back as a message; the UI thread only renders.
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
from willow_core.errors import ConfigError, WillowError
from willow_core.paths import data_dir
from willow_core.store.runs import Run, RunProgress
from willow_tui.help_screen import HelpScreen
from willow_tui.population_pane import PopulationPane

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
        self.sub_title = self.room.database_label

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="panes"):
            yield PopulationPane(database=self.room.database_label, host=self.room.host.name)
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_progress()
        self.set_interval(self.settings.tui.refresh_seconds, self.refresh_progress)

    def on_unmount(self) -> None:
        # Only the connection closes: detached generator workers keep running.
        self.room.close()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def refresh_progress(self) -> None:
        """Fetch the latest run's progress and log tail, off the UI thread."""
        try:
            progress = self.room.progress()
            lines = self.room.log_tail(progress, self.settings.tui.log_lines) if progress else []
        except WillowError as error:
            self.post_message(ProgressFetchFailed(f"{error.message} (retrying)"))
            return
        self.post_message(ProgressFetched(progress, lines))

    @on(ProgressFetched)
    def show_progress(self, message: ProgressFetched) -> None:
        self.query_one(PopulationPane).show_progress(message.progress, message.log_lines)

    @on(ProgressFetchFailed)
    def show_progress_failure(self, message: ProgressFetchFailed) -> None:
        self.query_one(PopulationPane).show_error(message.message)

    def action_start_run(self) -> None:
        self._run_command("start")

    def action_pause_run(self) -> None:
        self._run_command("pause")

    def action_resume_run(self) -> None:
        self._run_command("resume")

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self._all_bindings()))

    def _all_bindings(self) -> list[BindingType]:
        bindings: list[BindingType] = list(self.BINDINGS)
        for pane in self.query("#panes > *"):
            bindings.extend(getattr(pane, "BINDINGS", []))
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
