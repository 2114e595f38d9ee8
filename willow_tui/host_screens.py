"""The generator host in the control room: its state for the header, deploy (`d`) and stop (`x`).

Every call to the host runs in a thread worker that calls `ControlRoom`; results come back as
messages. The header's subtitle comes from `ControlRoom.host_state()`, which reads the link's
state without contacting the host.
"""

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import LoadingIndicator, Static

from willow_core.control import ControlRoom, StoppedRun
from willow_core.errors import WillowError
from willow_core.hosts.base import ConnectionState, LinkStatus
from willow_core.hosts.deploy import DeployResult
from willow_core.units import format_duration


class HostStateFetched(Message):
    """The state of the link to the generator host was read."""

    def __init__(self, host: str, state: ConnectionState) -> None:
        super().__init__()
        self.host = host
        self.state = state

    def header(self, database: str) -> str:
        """Return the header's subtitle: "db:5432/willow · generator on gpu-box: retrying in 4 s".

        A local generator needs no link, so the subtitle then names only the database.
        """
        if self.state.status is LinkStatus.LOCAL:
            return database
        return f"{database} · generator on {self.host}: {self.state.describe(time.monotonic())}"


class RunStopped(Message):
    """A stop request (`x`) was carried out."""

    def __init__(self, stopped: StoppedRun, host: str) -> None:
        super().__init__()
        self.stopped = stopped
        self.host = host

    def describe(self) -> str:
        """Return the toast text for the stop."""
        text = (
            f"Stopped run {self.stopped.run.run_id}: SIGTERM to "
            f"{len(self.stopped.signalled)} worker(s) on {self.host}."
        )
        if self.stopped.elsewhere:
            text += f" {self.stopped.elsewhere} on other hosts stop after their batch."
        return text + " r resumes it."


class ConfirmStopScreen(ModalScreen[bool]):
    """Asks before `x` kills the run's workers; y stops, n or Escape cancels."""

    DEFAULT_CSS = """
    ConfirmStopScreen { align: center middle; }
    ConfirmStopScreen > Vertical {
        width: 70; height: auto; border: round $error; padding: 1 2; background: $surface;
    }
    """
    BINDINGS = [
        Binding("y", "confirm", "Stop now", id="stop.confirm"),
        Binding("n,escape", "cancel", "Cancel", id="stop.cancel"),
    ]

    def __init__(self, host: str) -> None:
        super().__init__()
        self._host = host

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "[b]Stop the run now?[/b]\n\n"
                f"Its workers on {self._host} get SIGTERM at once and the batches they are "
                "generating roll back. The run stays paused; r resumes it from the next "
                "uncommitted batch.\n\n"
                "[b]y[/b] stop now    [b]n[/b] or [b]Esc[/b] cancel"
            )

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class DeployStepStarted(Message):
    """The deploy moved on to another step."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step


class DeployFinished(Message):
    """The deploy installed Willow on the host."""

    def __init__(self, result: DeployResult) -> None:
        super().__init__()
        self.result = result


class DeployFailed(Message):
    """The deploy stopped with an error."""

    def __init__(self, error: WillowError) -> None:
        super().__init__()
        self.error = error


class DeployScreen(ModalScreen[None]):
    """Builds, copies and installs Willow on the generator host (`d`), showing each step."""

    DEFAULT_CSS = """
    DeployScreen { align: center middle; }
    DeployScreen > Vertical {
        width: 90; height: auto; border: round $primary; padding: 1 2; background: $surface;
    }
    DeployScreen #deploy-steps { height: auto; }
    DeployScreen #deploy-result { height: auto; margin: 1 0 0 0; }
    DeployScreen LoadingIndicator { height: 1; }
    DeployScreen LoadingIndicator.-hidden { display: none; }
    """
    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="deploy.close")]

    def __init__(self, room: ControlRoom) -> None:
        super().__init__()
        self._room = room
        self._steps: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]Deploy Willow to {self._room.host.name}[/b]\n")
            yield Static("", id="deploy-steps", markup=False)
            yield LoadingIndicator()
            yield Static("", id="deploy-result", markup=False)
            yield Static("[dim]Escape closes this window; the install carries on.[/dim]")

    def on_mount(self) -> None:
        self.run_deploy()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def run_deploy(self) -> None:
        """Deploy off the UI thread, reporting each step as a message."""

        def report(step: str) -> None:
            self.post_message(DeployStepStarted(step))

        try:
            result = self._room.deploy(progress=report)
        except WillowError as error:
            self.post_message(DeployFailed(error))
            # A toast too, so the outcome shows even after this window was closed.
            self.app.call_from_thread(
                self.app.notify, error.message, title=error.title, severity="error", timeout=10
            )
            return
        self.post_message(DeployFinished(result))
        self.app.call_from_thread(
            self.app.notify, f"willow {result.version} installed on {result.host}."
        )

    @on(DeployStepStarted)
    def show_step(self, message: DeployStepStarted) -> None:
        self._steps.append(f"• {message.step}")
        self.query_one("#deploy-steps", Static).update("\n".join(self._steps))

    @on(DeployFinished)
    def show_result(self, message: DeployFinished) -> None:
        result = message.result
        total = result.build_seconds + result.upload_seconds + result.install_seconds
        self._finish(
            f"Installed willow {result.version} in {result.venv} "
            f"(Python {result.python_version}, {result.installer}) in {format_duration(total)}."
        )

    @on(DeployFailed)
    def show_failure(self, message: DeployFailed) -> None:
        self._finish(f"{message.error.title}: {message.error.message}")

    def _finish(self, text: str) -> None:
        self.query_one(LoadingIndicator).add_class("-hidden")
        self.query_one("#deploy-result", Static).update(text)
