"""The Pet Claims ontology: node labels, their keys and relationship types, defined once.

Everything else derives from the tuples below: the schema statements that `apply_schema` runs,
the `.cypher` file that `willow graph schema` prints, and the count queries behind the graph pane
and `willow graph counts`.

Labels, keys and relationship types cannot be Cypher parameters, so they are written into the
statements. They come only from this module, never from input, and `_check_identifier` rejects
anything that is not a plain identifier when the module loads. Every value is a parameter.
"""

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain Cypher identifier")
    return name


@dataclass(frozen=True)
class NodeSpec:
    """A node label with its unique key and the properties Willow writes."""

    label: str
    key: str
    """Property whose value is unique among nodes of this label."""
    description: str
    properties: tuple[str, ...]
    """Properties besides the key, in the order the exported schema lists them."""
    indexes: tuple[str, ...] = ()
    """Properties with a range index, for the filters the panes run."""

    def __post_init__(self) -> None:
        for name in (self.label, self.key, *self.properties, *self.indexes):
            _check_identifier(name)

    @property
    def constraint_name(self) -> str:
        return f"{self.label.lower()}_{self.key}_unique"

    def index_name(self, property_name: str) -> str:
        return f"{self.label.lower()}_{property_name}"


@dataclass(frozen=True)
class RelationshipSpec:
    """A relationship type and the labels at its two ends."""

    type: str
    start: str
    end: str
    description: str

    def __post_init__(self) -> None:
        for name in (self.type, self.start, self.end):
            _check_identifier(name)

    @property
    def pattern(self) -> str:
        return f"(:{self.start})-[:{self.type}]->(:{self.end})"


CUSTOMER = NodeSpec(
    "Customer",
    "population_id",
    "an NPC of the synthetic population; population_id is its customer_id in PostgreSQL",
    ("title", "first_name", "last_name", "date_of_birth", "town", "postcode"),
)
PET = NodeSpec(
    "Pet",
    "pet_id",
    "a pet of the population, or one acquired during a journey; pet_id matches PostgreSQL",
    ("name", "species", "breed", "sex", "date_of_birth", "neutered", "microchipped"),
)
QUOTE = NodeSpec(
    "Quote",
    "quote_id",
    "a priced offer of cover for one pet",
    (
        "journey_seed",
        "quoted_on",
        "cover",
        "excess",
        "co_payment",
        "benefit_limit",
        "annual_premium",
        "monthly_premium",
        "risk_group",
        "postcode_area",
        "pet_age_years",
    ),
)
POLICY = NodeSpec(
    "Policy",
    "policy_id",
    "a quote the customer accepted",
    (
        "start_date",
        "end_date",
        "term_months",
        "cover",
        "excess",
        "co_payment",
        "benefit_limit",
        "annual_premium",
        "status",
    ),
    indexes=("status",),
)
CLAIM = NodeSpec(
    "Claim",
    "claim_id",
    "a claim against a policy, moving submitted -> assessed -> approved or declined -> paid",
    (
        "condition",
        "incident_date",
        "vet_fee",
        "payout",
        "status",
        "decline_reason",
        "submitted_on",
        "assessed_on",
        "decided_on",
        "paid_on",
    ),
    indexes=("status",),
)
TEST_CUSTOMER = NodeSpec(
    "TestCustomer",
    "population_id",
    "tracks an NPC that a journey run has exercised",
    ("tested_at", "quote_generated", "policy_created", "claim_submitted"),
    indexes=("tested_at",),
)

NODES: tuple[NodeSpec, ...] = (CUSTOMER, PET, QUOTE, POLICY, CLAIM, TEST_CUSTOMER)

RELATIONSHIPS: tuple[RelationshipSpec, ...] = (
    RelationshipSpec("OWNS", "Customer", "Pet", "the customer owns the pet"),
    RelationshipSpec("REQUESTED", "Customer", "Quote", "the customer asked for the quote"),
    RelationshipSpec("FOR_PET", "Quote", "Pet", "the quote prices cover for the pet"),
    RelationshipSpec("BECAME", "Quote", "Policy", "the customer accepted the quote"),
    RelationshipSpec("COVERED_BY", "Pet", "Policy", "the policy covers the pet"),
    RelationshipSpec("HAS_CLAIM", "Policy", "Claim", "the claim was made on the policy"),
    RelationshipSpec("FOR_PET", "Claim", "Pet", "the claim is for the pet's treatment"),
    RelationshipSpec("TRACKS", "TestCustomer", "Customer", "a journey run exercised the NPC"),
)

NODE_LABELS: tuple[str, ...] = tuple(node.label for node in NODES)

RELATIONSHIP_TYPES: tuple[str, ...] = tuple(dict.fromkeys(rel.type for rel in RELATIONSHIPS))
"""Distinct relationship types, in declaration order (FOR_PET has two start labels)."""


def node(label: str) -> NodeSpec:
    """Return the spec of `label`.

    Raises:
        KeyError: the ontology has no such label.
    """
    for spec in NODES:
        if spec.label == label:
            return spec
    raise KeyError(label)


def constraint_statements() -> tuple[str, ...]:
    """Return one uniqueness constraint per label, on its key.

    `IF NOT EXISTS` makes each statement a no-op once the constraint exists, on Neo4j 5 and on
    ArcadeDB alike. The constraint also creates the index that MERGE uses to find the key.
    """
    return tuple(
        f"CREATE CONSTRAINT {spec.constraint_name} IF NOT EXISTS "
        f"FOR (n:{spec.label}) REQUIRE n.{spec.key} IS UNIQUE"
        for spec in NODES
    )


def index_statements() -> tuple[str, ...]:
    """Return the range indexes on the non-key properties that the panes filter on."""
    return tuple(
        f"CREATE INDEX {spec.index_name(prop)} IF NOT EXISTS FOR (n:{spec.label}) ON (n.{prop})"
        for spec in NODES
        for prop in spec.indexes
    )


def schema_statements() -> tuple[str, ...]:
    """Return every schema statement, constraints first."""
    return constraint_statements() + index_statements()


def schema_cypher() -> str:
    """Return the schema as a `.cypher` file: the statements, each ended by `;`, with the
    ontology described in comments."""
    lines = [
        "// Pet Claims ontology: uniqueness constraints and indexes.",
        "// Every statement is idempotent (IF NOT EXISTS); run the file with cypher-shell -f.",
        "//",
        "// Nodes (label: key, then the other properties):",
    ]
    for spec in NODES:
        lines.append(f"//   {spec.label}({spec.key}): {spec.description}")
        lines.append(f"//     {', '.join(spec.properties)}")
    lines.append("//")
    lines.append("// Relationships:")
    for rel in RELATIONSHIPS:
        lines.append(f"//   {rel.pattern}: {rel.description}")
    lines.append("")
    lines.extend(f"{statement};" for statement in constraint_statements())
    lines.append("")
    lines.extend(f"{statement};" for statement in index_statements())
    return "\n".join(lines) + "\n"


def node_count_query(label: str) -> str:
    """Return a query counting the nodes of `label` (column `count`).

    Raises:
        KeyError: `label` is not in the ontology.
    """
    spec = node(label)
    return f"MATCH (n:{spec.label}) RETURN count(n) AS count"


def relationship_count_query(rel_type: str) -> str:
    """Return a query counting the relationships of `rel_type` (column `count`).

    Raises:
        KeyError: `rel_type` is not in the ontology.
    """
    if rel_type not in RELATIONSHIP_TYPES:
        raise KeyError(rel_type)
    return f"MATCH ()-[r:{rel_type}]->() RETURN count(r) AS count"
