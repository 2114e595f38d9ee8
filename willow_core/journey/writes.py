"""Writing journeys to the graph: one `UNWIND $rows ... MERGE` statement per kind of row.

A batch of journeys becomes six lists of rows (customers, pets, quotes, policies, claims and
tracking), each written by one statement, all in one managed transaction. Nodes are merged on
their ontology key and created with `ON CREATE SET`, relationships are merged between nodes
matched by key, so writing the same batch again creates nothing and changes no value. The one
exception is the TestCustomer flags, which only ever turn from false to true.

The statements keep to the Cypher that Neo4j 5 and ArcadeDB 26 both run. Two differences matter:

- ArcadeDB returns a stored `datetime` without its time zone (Neo4j keeps it), so readers treat
  a naive `tested_at` as UTC.
- ArcadeDB does not support `CALL { ... } IN TRANSACTIONS`, so batching happens here in Python,
  one managed transaction per batch, rather than in Cypher.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, LiteralString

import neo4j

from willow_core.journey.steps import NpcJourney

Row = dict[str, Any]

MERGE_CUSTOMERS: LiteralString = """
UNWIND $rows AS row
MERGE (c:Customer {population_id: row.population_id})
ON CREATE SET c += row.properties
"""

MERGE_PETS: LiteralString = """
UNWIND $rows AS row
MATCH (c:Customer {population_id: row.population_id})
MERGE (p:Pet {pet_id: row.pet_id})
ON CREATE SET p += row.properties
MERGE (c)-[:OWNS]->(p)
"""

MERGE_QUOTES: LiteralString = """
UNWIND $rows AS row
MATCH (c:Customer {population_id: row.population_id})
MATCH (p:Pet {pet_id: row.pet_id})
MERGE (q:Quote {quote_id: row.quote_id})
ON CREATE SET q += row.properties
MERGE (c)-[:REQUESTED]->(q)
MERGE (q)-[:FOR_PET]->(p)
"""

MERGE_POLICIES: LiteralString = """
UNWIND $rows AS row
MATCH (q:Quote {quote_id: row.quote_id})
MATCH (p:Pet {pet_id: row.pet_id})
MERGE (pol:Policy {policy_id: row.policy_id})
ON CREATE SET pol += row.properties
MERGE (q)-[:BECAME]->(pol)
MERGE (p)-[:COVERED_BY]->(pol)
"""

MERGE_CLAIMS: LiteralString = """
UNWIND $rows AS row
MATCH (pol:Policy {policy_id: row.policy_id})
MATCH (p:Pet {pet_id: row.pet_id})
MERGE (cl:Claim {claim_id: row.claim_id})
ON CREATE SET cl += row.properties
MERGE (pol)-[:HAS_CLAIM]->(cl)
MERGE (cl)-[:FOR_PET]->(p)
"""

MERGE_TRACKING: LiteralString = """
UNWIND $rows AS row
MATCH (c:Customer {population_id: row.population_id})
MERGE (t:TestCustomer {population_id: row.population_id})
ON CREATE SET t.tested_at = row.tested_at,
              t.quote_generated = row.quote_generated,
              t.policy_created = row.policy_created,
              t.claim_submitted = row.claim_submitted
ON MATCH SET t.quote_generated = t.quote_generated OR row.quote_generated,
             t.policy_created = t.policy_created OR row.policy_created,
             t.claim_submitted = t.claim_submitted OR row.claim_submitted
MERGE (t)-[:TRACKS]->(c)
"""

STATEMENTS: tuple[tuple[str, LiteralString], ...] = (
    ("customers", MERGE_CUSTOMERS),
    ("pets", MERGE_PETS),
    ("quotes", MERGE_QUOTES),
    ("policies", MERGE_POLICIES),
    ("claims", MERGE_CLAIMS),
    ("tracking", MERGE_TRACKING),
)
"""Statements in the order they must run: each matches nodes the earlier ones merged."""


@dataclass
class JourneyRows:
    """The parameter rows of one batch, one list per statement."""

    customers: list[Row] = field(default_factory=list)
    pets: list[Row] = field(default_factory=list)
    quotes: list[Row] = field(default_factory=list)
    policies: list[Row] = field(default_factory=list)
    claims: list[Row] = field(default_factory=list)
    tracking: list[Row] = field(default_factory=list)

    def of(self, kind: str) -> list[Row]:
        rows: list[Row] = getattr(self, kind)
        return rows


def journey_rows(journeys: Iterable[NpcJourney], tested_at: datetime) -> JourneyRows:
    """Turn journeys into statement parameters; `tested_at` is stored on new TestCustomers."""
    rows = JourneyRows()
    for journey in journeys:
        customer, pet = journey.customer, journey.pet
        population_id = customer.customer_id
        rows.customers.append(
            {
                "population_id": population_id,
                "properties": {
                    "title": customer.title,
                    "first_name": customer.first_name,
                    "last_name": customer.last_name,
                    "date_of_birth": customer.date_of_birth,
                    "town": customer.town,
                    "postcode": customer.postcode,
                },
            }
        )
        rows.pets.append(
            {
                "population_id": population_id,
                "pet_id": pet.pet_id,
                "properties": {
                    "name": pet.name,
                    "species": pet.species,
                    "breed": pet.breed,
                    "sex": pet.sex,
                    "date_of_birth": pet.date_of_birth,
                    "neutered": pet.neutered,
                    "microchipped": pet.microchipped,
                },
            }
        )
        rows.tracking.append(
            {
                "population_id": population_id,
                "tested_at": tested_at,
                "quote_generated": journey.quote is not None,
                "policy_created": journey.policy is not None,
                "claim_submitted": journey.claim is not None,
            }
        )

        if journey.quote is None:
            continue
        price = journey.quote.price
        rows.quotes.append(
            {
                "population_id": population_id,
                "pet_id": pet.pet_id,
                "quote_id": journey.quote.quote_id,
                "properties": {
                    "journey_seed": journey.seed,
                    "quoted_on": journey.quote.quoted_on,
                    "cover": str(price.cover),
                    "excess": price.excess,
                    "co_payment": price.co_payment,
                    "benefit_limit": price.benefit_limit,
                    "annual_premium": price.annual_premium,
                    "monthly_premium": price.monthly_premium,
                    "risk_group": price.risk_group,
                    "postcode_area": price.postcode_area,
                    "pet_age_years": price.pet_age_years,
                },
            }
        )

        if journey.policy is None:
            continue
        policy = journey.policy
        rows.policies.append(
            {
                "quote_id": journey.quote.quote_id,
                "pet_id": pet.pet_id,
                "policy_id": policy.policy_id,
                "properties": {
                    "start_date": policy.start_date,
                    "end_date": policy.end_date,
                    "term_months": policy.term_months,
                    "cover": str(price.cover),
                    "excess": price.excess,
                    "co_payment": price.co_payment,
                    "benefit_limit": price.benefit_limit,
                    "annual_premium": price.annual_premium,
                    "status": policy.status,
                },
            }
        )

        if journey.claim is None:
            continue
        claim = journey.claim.claim
        properties: Row = {
            "condition": claim.condition,
            "incident_date": claim.incident_date,
            "vet_fee": claim.vet_fee,
            "payout": claim.payout,
            "status": str(claim.status),
            "submitted_on": claim.submitted_on,
        }
        # Absent steps stay absent rather than null: Cypher's SET with a null removes a property.
        optional = {
            "decline_reason": claim.decline_reason,
            "assessed_on": claim.assessed_on,
            "decided_on": claim.decided_on,
            "paid_on": claim.paid_on,
        }
        properties.update({key: value for key, value in optional.items() if value is not None})
        rows.claims.append(
            {
                "policy_id": policy.policy_id,
                "pet_id": pet.pet_id,
                "claim_id": journey.claim.claim_id,
                "properties": properties,
            }
        )
    return rows


def write_rows(tx: neo4j.ManagedTransaction, rows: JourneyRows) -> int:
    """Run every statement with its rows in transaction `tx`; return how many nodes it created."""
    created = 0
    for kind, statement in STATEMENTS:
        batch = rows.of(kind)
        if batch:
            created += tx.run(statement, rows=batch).consume().counters.nodes_created
    return created
