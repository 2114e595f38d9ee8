"""Pilot tests of `g` and `j`, the graph and journey panes, and their snapshot."""

import io
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from rich.console import Console
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.pilot import Pilot
from textual.widgets import Input, Static

from willow_core.config import Settings, parse_settings
from willow_core.graph.client import GraphClient
from willow_core.graph.embedded import EmbeddedGraphServer
from willow_core.graph.schema import GraphCounts
from willow_core.journey import sampling
from willow_core.journey.runner import (
    Funnel,
    JourneyProgress,
    JourneyReport,
    JourneyRunner,
    NpcError,
)
from willow_core.population.models import MAX_PETS_PER_CUSTOMER
from willow_tui import journey_pane
from willow_tui.app import WillowApp
from willow_tui.graph_pane import GraphPane
from willow_tui.journey_pane import JourneyCountScreen, JourneyPane

TIMEOUT_SECONDS = 90


def rendered(app: App[Any], selector: str) -> str:
    """Return the plain text a Static widget shows."""
    console = Console(width=160, file=io.StringIO(), record=True)
    matches = app.screen.query(selector)
    widget = matches.first(Static) if matches else app.query_one(selector, Static)
    console.print(widget.content)
    return console.export_text()


async def settle(pilot: Pilot[Any]) -> None:
    """Take focus off the panes' widgets so that key presses reach the app's bindings."""
    # NOTE: the validation pane's hidden filter Input takes the initial focus and swallows
    # letters typed before anything else has focus.
    pilot.app.screen.set_focus(None)
    await pilot.pause()


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(TIMEOUT_SECONDS / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    screen = pilot.app.screen
    shown = {
        widget.id: rendered(pilot.app, f"#{widget.id}")
        for widget in screen.query(Static)
        if widget.id and widget.id.startswith(("graph", "journey"))
    }
    raise AssertionError(f"timed out waiting for {what}; the panes show {shown}")


def _quiet(settings: Settings) -> Settings:
    """Settings with slow timers, so the only refreshes are the ones a test causes."""
    return settings.model_copy(
        update={
            "graph": settings.graph.model_copy(update={"refresh_seconds": 3600}),
            "tui": settings.tui.model_copy(update={"refresh_seconds": 3600}),
        }
    )


async def test_g_starts_embedded_server_and_counts(
    population_dsn: str, embedded_cleanup: EmbeddedGraphServer
) -> None:
    settings = _quiet(parse_settings({"postgres": {"dsn": population_dsn}}))
    app = WillowApp(settings)

    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: "not running" in rendered(app, "#graph-status"), "idle")
        assert embedded_cleanup.running() is None, "the timer started the graph server"

        await pilot.press("g")
        await wait_for(pilot, lambda: "connected" in rendered(app, "#graph-status"), "counts")
        info = embedded_cleanup.running()
        assert info is not None
        assert info.uri in rendered(app, "#graph-status")
        counts = rendered(app, "#graph-counts")
        for label in ("Customer", "Pet", "Quote", "Policy", "Claim", "TestCustomer", "TRACKS"):
            assert label in counts
        assert "0 customers with policies" in counts
        await pilot.press("q")

    assert embedded_cleanup.running() is None, "quitting did not stop the server the app started"


async def test_j_asks_count_then_runs(graph_settings: Settings) -> None:
    app = WillowApp(_quiet(graph_settings))

    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: "connected" in rendered(app, "#graph-status"), "graph")
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(app.screen, JourneyCountScreen), "the question")
        field = app.screen.query_one("#journey-count", Input)
        assert field.value == "200"

        field.value = "0"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "not a number of NPCs" in rendered(app, "#journey-count-error"), "check"
        )
        field.value = "120"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "120 journeys written" in rendered(app, "#journey-status"), "the run"
        )
        funnel = rendered(app, "#journey-funnel")
        assert "NPCs" in funnel
        assert "120" in funnel
        assert "of quotes" in funnel
        assert "paid" in funnel
        await wait_for(
            pilot,
            lambda: re.search(r"TestCustomer\s+120\b", rendered(app, "#graph-counts")) is not None,
            "graph counts after the run",
        )

        await settle(pilot)
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(app.screen, JourneyCountScreen), "the question")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, JourneyCountScreen), "cancel")
        await pilot.press("q")


async def test_journey_pane_lists_errors_and_goes_on(graph_settings: Settings) -> None:
    settings = _quiet(graph_settings)
    settings = settings.model_copy(
        update={"journey": settings.journey.model_copy(update={"new_pet_rate": 1.0, "npcs": 60})}
    )
    dsn = settings.postgres_dsn()
    assert dsn is not None
    with psycopg.connect(dsn) as conn:
        full = sampling.sample_customer_ids(conn, settings.journey.seed, 60)[5]
        for index in range(MAX_PETS_PER_CUSTOMER):
            conn.execute(
                "INSERT INTO pets VALUES (%s, %s, 'Pip', 'cat', 'Siamese', 'female', "
                "'2020-01-01', false, null, true) ON CONFLICT (pet_id) DO NOTHING",
                (full * MAX_PETS_PER_CUSTOMER + index, full),
            )
    app = WillowApp(settings)

    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(app.screen, JourneyCountScreen), "the question")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "59 journeys written" in rendered(app, "#journey-status"), "the run"
        )
        errors = rendered(app, "#journey-errors")
        assert "1 NPCs not written" in errors
        assert f"NPC {full}: customer {full} already has 8 pets" in errors
        await pilot.press("q")


async def test_stopped_server_shows_error_then_rerun_completes(
    population_dsn: str,
    embedded_cleanup: EmbeddedGraphServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class StopsServerAfterTwoBatches(JourneyRunner):
        """The real runner; the test stops the real server after its second batch, once."""

        stopped = False

        def run(self, *args: Any, on_progress: Any = None, **kwargs: Any) -> JourneyReport:
            def progress(update: JourneyProgress) -> None:
                if update.processed == 200 and not StopsServerAfterTwoBatches.stopped:
                    StopsServerAfterTwoBatches.stopped = True
                    assert embedded_cleanup.stop()
                on_progress(update)

            return super().run(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(journey_pane, "JourneyRunner", StopsServerAfterTwoBatches)
    settings = _quiet(
        parse_settings(
            {
                "postgres": {"dsn": population_dsn},
                "graph": {"connect_timeout": 1, "embedded_heap_mb": 512},
                "journey": {"npcs": 400, "batch_size": 100},
            }
        )
    )
    app = WillowApp(settings)

    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(app.screen, JourneyCountScreen), "the question")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "stopped after 200 of 400" in rendered(app, "#journey-status"), "stop"
        )
        assert "could not reach the graph server" in rendered(app, "#journey-error")

        await settle(pilot)
        await pilot.press("j")
        await wait_for(pilot, lambda: isinstance(app.screen, JourneyCountScreen), "the question")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "400 journeys written" in rendered(app, "#journey-status"), "rerun"
        )
        assert app.query_one("#journey-error", Static).has_class("-hidden")
        await pilot.press("q")

    assert embedded_cleanup.running() is None


class PanesApp(App[None]):
    """The two panes side by side, as the control room shows them."""

    def __init__(self, graph: GraphClient, settings: Settings) -> None:
        super().__init__()
        self.graph = graph
        self.settings = settings

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield GraphPane(self.graph, refresh_seconds=3600)
            yield JourneyPane(self.graph, self.settings, lambda: "unused")


SNAPSHOT_COUNTS = GraphCounts(
    nodes={"Customer": 1000, "Pet": 1000, "Quote": 998, "Policy": 296, "Claim": 41,
           "TestCustomer": 1000},
    relationships={"OWNS": 1000, "REQUESTED": 998, "FOR_PET": 1039, "BECAME": 296,
                   "COVERED_BY": 296, "HAS_CLAIM": 41, "TRACKS": 1000},
    customers_with_policies=296,
    claim_states={"paid": 30, "submitted": 6, "declined": 5},
    as_of=datetime(2026, 1, 1, 9, 30, tzinfo=UTC),
)  # fmt: skip
SNAPSHOT_REPORT = JourneyReport(
    seed=5,
    requested=1000,
    funnel=Funnel(
        npcs=999, quotes=997, policies=296, claims=41,
        claim_states={"submitted": 6, "assessed": 0, "approved": 0, "declined": 5, "paid": 30},
        new_pets=694,
    ),
    errors=(NpcError((2028,), "customer 2028 already has 8 pets, the most a customer can have"),),
    elapsed_seconds=1.6,
    batch_size=1000,
    nodes_created=4331,
)  # fmt: skip


@pytest.fixture
def utc_clock() -> Iterator[None]:
    """Show local times in UTC for the length of a test."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.usefixtures("utc_clock")
def test_panes_snapshot(snap_compare: Any) -> None:
    settings = parse_settings({"graph": {"uri": "bolt://127.0.0.1:9", "connect_timeout": 1}})
    graph = GraphClient(settings)

    async def show_fixed_data(pilot: Pilot[None]) -> None:
        await wait_for(pilot, lambda: "unreachable" in rendered(pilot.app, "#graph-status"), "x")
        pilot.app.query_one(GraphPane).show_counts(SNAPSHOT_COUNTS, "bolt://127.0.0.1:7687")
        pilot.app.query_one(JourneyPane).show_finished(SNAPSHOT_REPORT)
        await pilot.pause()

    try:
        assert snap_compare(
            PanesApp(graph, settings), terminal_size=(130, 34), run_before=show_fixed_data
        )
    finally:
        graph.close()
