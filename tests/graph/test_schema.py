"""The ontology spec, schema apply and counts against the real embedded Bolt server."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from willow_core.cli import main
from willow_core.errors import GraphError
from willow_core.graph import ontology
from willow_core.graph.client import GraphClient
from willow_core.graph.schema import apply_schema, read_counts
from willow_core.journey.pricing import CoverLevel, price_quote
from willow_core.journey.steps import NpcJourney, QuoteOutcome
from willow_core.journey.writes import journey_rows, write_rows
from willow_core.population.models import CustomerRow, PetRow


def test_spec_has_constraint_per_label() -> None:
    statements = ontology.constraint_statements()
    assert len(statements) == len(ontology.NODES)
    for spec in ontology.NODES:
        assert any(f"(n:{spec.label}) REQUIRE n.{spec.key} IS UNIQUE" in s for s in statements)


def test_spec_rejects_unsafe_identifier() -> None:
    with pytest.raises(ValueError, match="not a plain Cypher identifier"):
        ontology.NodeSpec("Bad`Label", "key", "injection attempt", ())


def test_exported_cypher_matches_statements() -> None:
    text = ontology.schema_cypher()
    for statement in ontology.schema_statements():
        assert f"{statement};" in text
    for rel in ontology.RELATIONSHIPS:
        assert rel.pattern in text


def test_schema_apply_twice_is_noop(graph_client: GraphClient) -> None:
    first = apply_schema(graph_client)
    second = apply_schema(graph_client)

    assert first.constraints_added == len(ontology.NODES)
    assert first.indexes_added == len(ontology.index_statements())
    assert second.constraints_added == 0
    assert second.indexes_added == 0
    assert not second.changed
    names = {row["name"] for row in graph_client.read("SHOW CONSTRAINTS")}
    assert {spec.constraint_name for spec in ontology.NODES} <= names


def test_duplicate_key_rejected_by_constraint(graph_client: GraphClient) -> None:
    apply_schema(graph_client)
    graph_client.write(lambda tx: tx.run("CREATE (:Customer {population_id: 1})").consume())

    with pytest.raises(GraphError, match="writing to the graph failed"):
        graph_client.write(lambda tx: tx.run("CREATE (:Customer {population_id: 1})").consume())

    rows = graph_client.read("MATCH (c:Customer {population_id: 1}) RETURN count(c) AS n")
    assert rows == [{"n": 1}]


def _journey(customer: CustomerRow, pet: PetRow) -> NpcJourney:
    quoted_on = date(2025, 6, 1)
    price = price_quote(
        species=pet.species,
        breed=pet.breed,
        date_of_birth=pet.date_of_birth,
        postcode=customer.postcode,
        quoted_on=quoted_on,
        cover=CoverLevel.LIFETIME,
        excess=99,
    )
    quote = QuoteOutcome("Q-hostile", quoted_on, price)
    return NpcJourney(9, customer, pet, False, quote, None, None, None)


HOSTILE = "O'Brien \"}) MATCH (n) DETACH DELETE n // {$rows} RETURN `x`; CREATE (:Evil)"


def test_hostile_values_stored_verbatim(graph_client: GraphClient) -> None:
    apply_schema(graph_client)
    customer = CustomerRow(
        customer_id=42,
        title="Dr",
        first_name=HOSTILE,
        last_name="MERGE (x) SET x.y = 'z'",
        date_of_birth=date(1980, 2, 29),
        email="a@example.com",
        phone="07700 900123",
        address_line1="1 {curly} Street",
        address_line2=None,
        town="Ross-on-Wye",
        postcode="HR9 5AA",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    pet = PetRow(336, 42, "Rex'); DROP TABLE pets; --", "dog", "Crossbreed", "male",
                 date(2020, 1, 1), True, "826000000000001", False)  # fmt: skip
    rows = journey_rows([_journey(customer, pet)], datetime(2026, 1, 1, tzinfo=UTC))

    graph_client.write(lambda tx: write_rows(tx, rows))
    graph_client.write(lambda tx: write_rows(tx, rows))

    stored = graph_client.read(
        "MATCH (c:Customer {population_id: $id})-[:OWNS]->(p:Pet) "
        "RETURN c.first_name AS first, c.last_name AS last, p.name AS pet",
        {"id": 42},
    )
    assert stored == [
        {"first": HOSTILE, "last": "MERGE (x) SET x.y = 'z'", "pet": "Rex'); DROP TABLE pets; --"}
    ]
    counts = read_counts(graph_client)
    assert counts.nodes["Customer"] == 1
    assert counts.nodes["Pet"] == 1
    assert counts.nodes["Quote"] == 1
    assert counts.total_nodes == 4
    assert graph_client.read("MATCH (n:Evil) RETURN count(n) AS n") == [{"n": 0}]


def test_counts_of_empty_graph(graph_client: GraphClient) -> None:
    apply_schema(graph_client)
    counts = read_counts(graph_client)
    assert set(counts.nodes) == set(ontology.NODE_LABELS)
    assert set(counts.relationships) == set(ontology.RELATIONSHIP_TYPES)
    assert counts.total_nodes == 0
    assert counts.total_relationships == 0
    assert counts.customers_with_policies == 0
    assert counts.claim_states == {}


def test_cli_graph_schema_prints_cypher(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "schema"]) == 0
    out = capsys.readouterr().out
    assert out == ontology.schema_cypher()


def test_cli_graph_counts_and_apply(
    graph_client: GraphClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = graph_client.settings.graph
    config = tmp_path / "config.toml"
    config.write_text(
        f'[graph]\nuri = "{graph.uri}"\nuser = "{graph.user}"\ndatabase = "{graph.database}"\n'
    )

    assert main(["--config", str(config), "graph", "schema", "--apply"]) == 0
    assert "6 constraints and 3 indexes added" in capsys.readouterr().out
    assert main(["--config", str(config), "graph", "counts"]) == 0
    out = capsys.readouterr().out
    for label in ontology.NODE_LABELS:
        assert label in out
    assert "customers with policies" in out
