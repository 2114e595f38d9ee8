"""The graph pane: the Pet Claims graph's address, state and counts.

Counts are read by a thread worker on a timer and on `g`. The timer never starts the embedded
graph server, so opening the control room costs no JVM; `g` (or a journey run) starts it.
"""

from datetime import datetime

from rich import box
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from willow_core.errors import WillowError
from willow_core.graph.client import GraphClient
from willow_core.graph.schema import GraphCounts, read_counts
from willow_core.units import format_count


class GraphCountsFetched(Message):
    """The graph's counts were read."""

    def __init__(self, counts: GraphCounts, address: str) -> None:
        super().__init__()
        self.counts = counts
        self.address = address


class GraphCountsFetchFailed(Message):
    """Reading the counts failed; the next refresh retries."""

    def __init__(self, message: str, address: str) -> None:
        super().__init__()
        self.message = message
        self.address = address


class GraphServerIdle(Message):
    """The embedded graph server is not running and the refresh did not start it."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address


class GraphPane(Vertical):
    """Node counts per label, relationship counts and customers with policies."""

    DEFAULT_CSS = """
    GraphPane {
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
        height: 1fr;
    }
    GraphPane #graph-status { height: auto; }
    GraphPane #graph-error { color: $error; height: auto; }
    GraphPane #graph-error.-hidden { display: none; }
    GraphPane #graph-counts { height: auto; margin: 1 0 0 0; }
    """

    def __init__(
        self, graph: GraphClient, *, refresh_seconds: float, id: str | None = "graph"
    ) -> None:
        super().__init__(id=id)
        self.graph = graph
        self.refresh_seconds = refresh_seconds
        self.border_title = "Pet Claims graph"

    def compose(self) -> ComposeResult:
        yield Static(f"Connecting to {self.graph.address}…", id="graph-status")
        yield Static("", id="graph-error", classes="-hidden")
        yield Static("", id="graph-counts")

    def on_mount(self) -> None:
        self.refresh_counts()
        self.set_interval(self.refresh_seconds, self.refresh_counts)

    @work(thread=True, exclusive=True, group="graph-counts", exit_on_error=False)
    def refresh_counts(self, start: bool = False) -> None:
        """Read the counts off the UI thread; start the embedded server only when `start`."""
        if not start and self.graph.needs_start():
            self.post_message(GraphServerIdle(self.graph.address))
            return
        try:
            counts = read_counts(self.graph)
        except WillowError as error:
            self.post_message(
                GraphCountsFetchFailed(f"{error.message} (retrying)", self.graph.address)
            )
            return
        self.post_message(GraphCountsFetched(counts, self.graph.address))

    @on(GraphCountsFetched)
    def show_fetched_counts(self, message: GraphCountsFetched) -> None:
        self.show_counts(message.counts, message.address)

    @on(GraphCountsFetchFailed)
    def show_fetch_failure(self, message: GraphCountsFetchFailed) -> None:
        self.show_error(message.message, message.address)

    @on(GraphServerIdle)
    def show_idle_server(self, message: GraphServerIdle) -> None:
        self._set_status("not running", "yellow", message.address)
        self._set_error(None)
        self.query_one("#graph-counts", Static).update(
            Text("Press g to start the embedded graph server, or j to run journeys.", style="dim")
        )

    def show_counts(self, counts: GraphCounts, address: str) -> None:
        """Render `counts` read from the server at `address`; clears any error."""
        self._set_status("connected", "bold green", address)
        self._set_error(None)
        self.query_one("#graph-counts", Static).update(counts_table(counts))

    def show_error(self, message: str, address: str) -> None:
        """Show why the last refresh failed; the counts shown before stay, marked stale."""
        self._set_status("unreachable", "bold red", address)
        self._set_error(message)

    def _set_status(self, state: str, style: str, address: str) -> None:
        self.query_one("#graph-status", Static).update(
            Text.assemble((state, style), " · ", (address, "dim"))
        )

    def _set_error(self, message: str | None) -> None:
        error = self.query_one("#graph-error", Static)
        error.update(message or "")
        error.set_class(message is None, "-hidden")


def counts_table(counts: GraphCounts) -> Table:
    """Return the pane's table: nodes per label, relationships per type, customers with policies."""
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), expand=False, show_edge=False)
    table.add_column("node", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("relationship", no_wrap=True)
    table.add_column("count", justify="right")
    nodes = list(counts.nodes.items())
    relationships = list(counts.relationships.items())
    blank = ("", None)
    for index in range(max(len(nodes), len(relationships))):
        label, node_count = nodes[index] if index < len(nodes) else blank
        rel_type, rel_count = relationships[index] if index < len(relationships) else blank
        # A dot rather than an empty cell, because Textual drops the leading blanks of a line.
        table.add_row(label or "·", _count(node_count), rel_type or "·", _count(rel_count))
    table.add_row(
        Text("total", style="bold"),
        Text(format_count(counts.total_nodes), style="bold"),
        Text("total", style="bold"),
        Text(format_count(counts.total_relationships), style="bold"),
    )
    table.caption = (
        f"{format_count(counts.customers_with_policies)} customers with policies · "
        f"as of {_clock(counts.as_of)}"
    )
    table.caption_justify = "left"
    return table


def _count(value: int | None) -> str:
    return "" if value is None else format_count(value)


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")
