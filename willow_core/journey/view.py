"""One NPC's journeys as stored in the graph, for the NPC record screen."""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, LiteralString

from willow_core.graph.client import GraphClient

Properties = dict[str, Any]

_TRACKING: LiteralString = """
MATCH (c:Customer {population_id: $population_id})
OPTIONAL MATCH (t:TestCustomer)-[:TRACKS]->(c)
RETURN t {.*} AS tracking
"""

_QUOTES: LiteralString = """
MATCH (c:Customer {population_id: $population_id})-[:REQUESTED]->(q:Quote)-[:FOR_PET]->(p:Pet)
OPTIONAL MATCH (q)-[:BECAME]->(pol:Policy)
OPTIONAL MATCH (pol)-[:HAS_CLAIM]->(cl:Claim)
RETURN q {.*} AS quote, p {.*} AS pet, pol {.*} AS policy, collect(cl {.*}) AS claims
"""


@dataclass(frozen=True)
class QuoteJourney:
    """A quote with the pet it was for, the policy it became and that policy's claims."""

    quote: Properties
    pet: Properties
    policy: Properties | None
    claims: tuple[Properties, ...]


@dataclass(frozen=True)
class NpcJourneyView:
    """The quotes, policies and claims the graph stores for one NPC."""

    population_id: int
    in_graph: bool
    """Whether the NPC is in the graph at all; False before any journey sampled it."""
    tracking: Properties | None
    """The TestCustomer's properties: tested_at and the three flags."""
    quotes: tuple[QuoteJourney, ...]
    """Oldest quote first."""


def read_npc_journey(client: GraphClient, population_id: int) -> NpcJourneyView:
    """Read the quotes, policies and claims of one NPC from the graph.

    Raises:
        GraphUnavailable, GraphError: the server is unreachable or rejected a query.
    """
    parameters = {"population_id": population_id}
    tracking_rows = client.read(
        _TRACKING, parameters, operation=f"reading the journey of NPC {population_id}"
    )
    if not tracking_rows:
        return NpcJourneyView(population_id, False, None, ())

    tracking = _native_map(tracking_rows[0]["tracking"])
    if tracking is not None and isinstance(tracking.get("tested_at"), datetime):
        # ArcadeDB returns stored datetimes without their zone; Willow writes them in UTC.
        tested_at: datetime = tracking["tested_at"]
        if tested_at.tzinfo is None:
            tracking["tested_at"] = tested_at.replace(tzinfo=UTC)

    quotes = []
    for row in client.read(
        _QUOTES, parameters, operation=f"reading the quotes of NPC {population_id}"
    ):
        claims = [_native_map(claim) for claim in row["claims"]]
        quotes.append(
            QuoteJourney(
                quote=_native_map(row["quote"]) or {},
                pet=_native_map(row["pet"]) or {},
                policy=_native_map(row["policy"]),
                claims=tuple(
                    sorted(
                        (claim for claim in claims if claim),
                        key=lambda claim: str(claim.get("claim_id")),
                    )
                ),
            )
        )
    quotes.sort(key=lambda journey: journey.quote.get("quoted_on") or date.min)
    return NpcJourneyView(population_id, True, tracking, tuple(quotes))


def _native_map(value: Any) -> Properties | None:
    if value is None:
        return None
    return {key: _native(item) for key, item in dict(value).items()}


def _native(value: Any) -> Any:
    # neo4j.time.Date, DateTime and Duration convert to their standard library types.
    to_native = getattr(value, "to_native", None)
    return to_native() if callable(to_native) else value
