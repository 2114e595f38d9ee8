"""Applying the ontology's schema and counting what the graph holds."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import LiteralString

from willow_core.graph import ontology
from willow_core.graph.client import GraphClient

log = logging.getLogger("willow.graph.schema")


@dataclass(frozen=True)
class SchemaReport:
    """Constraints and indexes one schema apply created; both zero when the schema was in place."""

    statements: int
    constraints_added: int
    indexes_added: int

    @property
    def changed(self) -> bool:
        return self.constraints_added + self.indexes_added > 0


def apply_schema(client: GraphClient) -> SchemaReport:
    """Create the ontology's uniqueness constraints and indexes that the graph lacks.

    Every statement uses `IF NOT EXISTS`, so a second apply changes nothing.

    Raises:
        GraphUnavailable, GraphError: the server is unreachable or rejected a statement.
    """
    statements = ontology.schema_statements()
    constraints = indexes = 0
    for statement in statements:
        # The statements are built from the ontology's checked identifiers, never from input.
        counters = client.run_schema_statement(statement)
        constraints += counters.constraints_added
        indexes += counters.indexes_added

    report = SchemaReport(len(statements), constraints, indexes)
    if report.changed:
        log.info("graph schema applied: %d constraints and %d indexes added", constraints, indexes)
    return report


@dataclass(frozen=True)
class GraphCounts:
    """Node and relationship counts of the Pet Claims graph at one moment."""

    nodes: dict[str, int]
    """Nodes per label, in ontology order."""
    relationships: dict[str, int]
    """Relationships per type, in ontology order."""
    customers_with_policies: int
    claim_states: dict[str, int]
    """Claims per workflow status."""
    as_of: datetime

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_relationships(self) -> int:
        return sum(self.relationships.values())


_CUSTOMERS_WITH_POLICIES: LiteralString = (
    "MATCH (c:Customer)-[:REQUESTED]->(:Quote)-[:BECAME]->(:Policy) "
    "RETURN count(DISTINCT c) AS count"
)
_CLAIM_STATES: LiteralString = "MATCH (c:Claim) RETURN c.status AS status, count(*) AS count"


def read_counts(client: GraphClient) -> GraphCounts:
    """Count nodes per label, relationships per type, customers with policies and claim states.

    Each label and type is counted by its own query, which Neo4j answers from its count store.

    Raises:
        GraphUnavailable, GraphError: the server is unreachable or rejected a query.
    """
    nodes = {
        label: _count(client, ontology.node_count_query(label), f"counting {label} nodes")
        for label in ontology.NODE_LABELS
    }
    relationships = {
        rel_type: _count(
            client,
            ontology.relationship_count_query(rel_type),
            f"counting {rel_type} relationships",
        )
        for rel_type in ontology.RELATIONSHIP_TYPES
    }
    with_policies = _count(client, _CUSTOMERS_WITH_POLICIES, "counting customers with policies")
    states = {
        str(row["status"]): int(row["count"])
        for row in client.read(_CLAIM_STATES, operation="counting claims by status")
    }
    return GraphCounts(nodes, relationships, with_policies, states, datetime.now(UTC))


def _count(client: GraphClient, query: str, operation: str) -> int:
    rows = client.read(query, operation=operation)
    return int(rows[0]["count"]) if rows else 0
