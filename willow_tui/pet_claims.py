"""The Pet Claims column: the graph pane above the journey pane."""

import time

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical

from willow_core.config import Settings
from willow_core.control import ControlRoom
from willow_core.graph.client import GraphClient
from willow_tui.graph_pane import GraphCountsFetched, GraphPane
from willow_tui.journey_pane import JourneyPane, JourneysFinished, JourneysProgressed


class PetClaimsColumn(Vertical):
    """Stacks the graph and journey panes and keeps them in step: counts refresh after every
    journey batch, and the journey pane shows the graph's funnel until it runs journeys itself."""

    DEFAULT_CSS = """
    PetClaimsColumn { width: 1fr; height: 1fr; }
    PetClaimsColumn GraphPane { height: auto; max-height: 50%; }
    """

    def __init__(
        self,
        graph: GraphClient,
        room: ControlRoom,
        settings: Settings,
        id: str | None = "pet-claims",
    ) -> None:
        super().__init__(id=id)
        self.graph = graph
        self.room = room
        self.settings = settings
        self._last_refresh = 0.0

    def compose(self) -> ComposeResult:
        yield GraphPane(self.graph, refresh_seconds=self.settings.graph.refresh_seconds)
        yield JourneyPane(self.graph, self.settings, self.room.dsn)

    @on(GraphCountsFetched)
    def share_graph_funnel(self, message: GraphCountsFetched) -> None:
        self.query_one(JourneyPane).show_graph_funnel(message.counts)

    @on(JourneysProgressed)
    def refresh_counts_while_running(self) -> None:
        now = time.monotonic()
        if now - self._last_refresh >= self.settings.graph.refresh_seconds:
            self._last_refresh = now
            self.query_one(GraphPane).refresh_counts(start=True)

    @on(JourneysFinished)
    def refresh_counts_after_run(self) -> None:
        self._last_refresh = time.monotonic()
        self.query_one(GraphPane).refresh_counts(start=True)
