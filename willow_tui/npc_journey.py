"""A section for the NPC record screen: the NPC's journeys in the Pet Claims graph.

It reads the graph in a thread worker when mounted. It does not start the embedded graph server
(opening a record should not cost a JVM start) and shows how to start it instead.
"""

from datetime import date, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import Static

from willow_core.errors import WillowError
from willow_core.graph.client import GraphClient
from willow_core.journey.view import NpcJourneyView, QuoteJourney, read_npc_journey

TITLE = Text("Journey in the graph", style="bold")


class NpcJourneyFetched(Message):
    """The NPC's journeys were read from the graph."""

    def __init__(self, view: NpcJourneyView) -> None:
        super().__init__()
        self.view = view


class NpcJourneyFetchFailed(Message):
    """The graph could not be read."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


class NpcJourneySection(Static):
    """The quotes, policies and claims of one NPC, as stored in the graph."""

    DEFAULT_CSS = """
    NpcJourneySection { height: auto; }
    """

    def __init__(
        self,
        population_id: int,
        graph: GraphClient | None,
        *,
        id: str | None = "record-journey",
        classes: str | None = None,
    ) -> None:
        super().__init__(
            Group(TITLE, Text("Reading the graph…", style="dim")), id=id, classes=classes
        )
        self.population_id = population_id
        self.graph = graph

    def on_mount(self) -> None:
        if self.graph is None:
            self.update(Group(TITLE, Text("No graph is configured.", style="dim")))
        elif self.graph.needs_start():
            self.update(
                Group(
                    TITLE,
                    Text(
                        "The embedded graph server is not running; press g on the main screen "
                        "to start it.",
                        style="dim",
                    ),
                )
            )
        else:
            self.load_journey()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load_journey(self) -> None:
        """Read the NPC's journeys off the UI thread."""
        assert self.graph is not None
        try:
            view = read_npc_journey(self.graph, self.population_id)
        except WillowError as error:
            self.post_message(NpcJourneyFetchFailed(error.message))
            return
        self.post_message(NpcJourneyFetched(view))

    @on(NpcJourneyFetched)
    def show_journey(self, message: NpcJourneyFetched) -> None:
        self.update(render_journey(message.view))

    @on(NpcJourneyFetchFailed)
    def show_failure(self, message: NpcJourneyFetchFailed) -> None:
        self.update(Group(TITLE, Text(message.message, style="bold red")))


def render_journey(view: NpcJourneyView) -> RenderableType:
    """Render what the graph contains about one NPC."""
    if not view.in_graph:
        return Group(TITLE, Text("Not in the graph: no journey run has sampled this NPC yet."))

    parts: list[RenderableType] = [TITLE]
    tracking = view.tracking or {}
    flags = [
        name
        for key, name in (
            ("quote_generated", "quote generated"),
            ("policy_created", "policy created"),
            ("claim_submitted", "claim submitted"),
        )
        if tracking.get(key)
    ]
    parts.append(
        Text(
            f"Tested {_shown(tracking.get('tested_at'))}: {', '.join(flags) or 'no quote'}",
            style="dim",
        )
    )
    for journey in view.quotes:
        parts.append(_quote_table(journey))
    return Group(*parts)


def _quote_table(journey: QuoteJourney) -> Table:
    quote, pet, policy = journey.quote, journey.pet, journey.policy
    table = Table("step", "id", "detail", box=None, padding=(0, 1), show_header=False)
    table.add_row(
        Text("quote", style="bold"),
        str(quote.get("quote_id")),
        f"{_shown(quote.get('quoted_on'))} · {quote.get('cover')} · excess £{quote.get('excess')}"
        f" · £{_money(quote.get('annual_premium'))} a year for {pet.get('name')} "
        f"({pet.get('species')}, {pet.get('breed')})",
    )
    if policy is None:
        table.add_row(Text("policy", style="bold"), "—", "not taken")
        return table
    table.add_row(
        Text("policy", style="bold"),
        str(policy.get("policy_id")),
        f"{_shown(policy.get('start_date'))} to {_shown(policy.get('end_date'))} · "
        f"{policy.get('status')}",
    )
    for claim in journey.claims:
        detail = (
            f"{claim.get('condition')} on {_shown(claim.get('incident_date'))} · vet fee "
            f"£{_money(claim.get('vet_fee'))} · {claim.get('status')}"
        )
        if claim.get("status") in ("approved", "paid"):
            detail += f" · pays £{_money(claim.get('payout'))}"
        if claim.get("decline_reason"):
            detail += f" ({claim.get('decline_reason')})"
        table.add_row(Text("claim", style="bold"), str(claim.get("claim_id")), detail)
    return table


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone().strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return "—" if value is None else str(value)


def _money(value: Any) -> str:
    return f"{float(value):,.2f}" if isinstance(value, int | float) else "—"
