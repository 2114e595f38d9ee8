"""Journey runs: sample NPCs, run their journeys and write them to the graph in batches.

A run with a given seed and size always samples the same NPCs (while the committed population is
unchanged) and gives each the same journey, and every graph write is a MERGE. So running it again
creates nothing new, and a run that stopped part-way (the graph server went away, the user
cancelled) is completed by running it again.

Per batch of `[journey] batch_size` NPCs the runner loads the customers and their pets from
PostgreSQL, writes any new pets there (one transaction), simulates the journeys and writes them to
the graph (one managed transaction). An NPC that cannot take part is recorded as an error and the
run goes on; a batch the graph rejects is recorded and the run goes on; when the graph server or
PostgreSQL cannot be reached, the run stops and reports what it wrote.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import psycopg

from willow_core import milestones
from willow_core.config import JourneySettings
from willow_core.errors import GraphError, GraphUnavailable, StoreError
from willow_core.graph.client import GraphClient
from willow_core.graph.schema import GraphCounts, apply_schema
from willow_core.journey import sampling, steps
from willow_core.journey.claims import CLAIM_STATES
from willow_core.journey.writes import journey_rows, write_rows
from willow_core.population.models import PetRow
from willow_core.store.db import connect
from willow_core.store.migrations import migrate

log = logging.getLogger("willow.journey.runner")


@dataclass(frozen=True)
class Funnel:
    """NPCs -> quotes -> policies -> claims, with the claims' workflow states."""

    npcs: int = 0
    quotes: int = 0
    policies: int = 0
    claims: int = 0
    claim_states: dict[str, int] = field(default_factory=dict)
    """Claims per status, every status of the workflow present (0 when none)."""
    new_pets: int = 0
    """Pets acquired for the journeys; known for a run, not recorded in the graph."""

    @property
    def quote_rate(self) -> float:
        return self.quotes / self.npcs if self.npcs else 0.0

    @property
    def policy_rate(self) -> float:
        return self.policies / self.quotes if self.quotes else 0.0

    @property
    def claim_rate(self) -> float:
        return self.claims / self.policies if self.policies else 0.0

    def plus(self, journeys: list[steps.NpcJourney]) -> "Funnel":
        """Return this funnel with `journeys` added."""
        states = Counter(self.claim_states)
        for journey in journeys:
            if journey.claim is not None:
                states[str(journey.claim.claim.status)] += 1
        return replace(
            self,
            npcs=self.npcs + len(journeys),
            quotes=self.quotes + sum(1 for j in journeys if j.quote is not None),
            policies=self.policies + sum(1 for j in journeys if j.policy is not None),
            claims=self.claims + sum(1 for j in journeys if j.claim is not None),
            claim_states=_all_states(states),
            new_pets=self.new_pets + sum(1 for j in journeys if j.new_pet),
        )

    @classmethod
    def from_counts(cls, counts: GraphCounts) -> "Funnel":
        """Return the funnel of everything in the graph: every journey run so far."""
        return cls(
            npcs=counts.nodes.get("TestCustomer", 0),
            quotes=counts.nodes.get("Quote", 0),
            policies=counts.nodes.get("Policy", 0),
            claims=counts.nodes.get("Claim", 0),
            claim_states=_all_states(Counter(counts.claim_states)),
        )


def _all_states(states: Counter[str]) -> dict[str, int]:
    ordered = {str(status): states.get(str(status), 0) for status in CLAIM_STATES}
    ordered.update({status: count for status, count in states.items() if status not in ordered})
    return ordered


@dataclass(frozen=True)
class NpcError:
    """Reason an NPC, or a whole batch of NPCs, was not written."""

    population_ids: tuple[int, ...]
    message: str


@dataclass(frozen=True)
class JourneyProgress:
    """A snapshot of a run, sent after every batch."""

    seed: int
    requested: int
    processed: int
    """NPCs handled so far, written or not."""
    funnel: Funnel
    """Funnel of what has been written to the graph so far."""
    errors: tuple[NpcError, ...]
    elapsed_seconds: float


@dataclass(frozen=True)
class JourneyReport:
    """The outcome of a run."""

    seed: int
    requested: int
    funnel: Funnel
    """Funnel of this run's writes to the graph, which a rerun finds already there."""
    errors: tuple[NpcError, ...]
    elapsed_seconds: float
    batch_size: int
    nodes_created: int
    """Graph nodes this run created; 0 when a rerun found everything already written."""
    stopped: str | None = None
    """Reason the run ended before its last batch; None when it went through every batch."""

    @property
    def complete(self) -> bool:
        """Whether every NPC was handled; some may still have errors."""
        return self.stopped is None

    @property
    def failed_npcs(self) -> int:
        return sum(len(error.population_ids) for error in self.errors)

    @property
    def journeys_per_second(self) -> float:
        return self.funnel.npcs / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


ProgressCallback = Callable[[JourneyProgress], None]


class JourneyRunner:
    """Runs journeys over sampled NPCs.

    Args:
        dsn: the population database.
        graph: the Pet Claims graph; the runner applies its schema before writing.
        settings: rates and batch size.
        connect_timeout: seconds to wait for PostgreSQL.
    """

    def __init__(
        self,
        dsn: str,
        graph: GraphClient,
        settings: JourneySettings,
        *,
        connect_timeout: int = 10,
    ) -> None:
        self.dsn = dsn
        self.graph = graph
        self.settings = settings
        self.connect_timeout = connect_timeout

    def run(
        self,
        npcs: int | None = None,
        seed: int | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> JourneyReport:
        """Run journeys for `npcs` sampled NPCs (defaults from `[journey]`).

        Args:
            on_progress: called after every batch, from this thread.
            should_stop: checked after every batch; when it returns True the run stops there.

        Returns:
            The report, also when the run stopped early; `stopped` contains the reason.

        Raises:
            JourneyError: there are fewer committed customers than `npcs`.
            StoreError, GraphError: the run could not start (sampling, schema).
        """
        requested = npcs if npcs is not None else self.settings.npcs
        seed = seed if seed is not None else self.settings.seed
        batch_size = self.settings.batch_size
        started = time.monotonic()
        tested_at = datetime.now(UTC).replace(microsecond=0)

        conn = connect(self.dsn, timeout=self.connect_timeout, autocommit=True)
        try:
            migrate(conn)
            apply_schema(self.graph)
            customer_ids = sampling.sample_customer_ids(conn, seed, requested)
            log.info("journey run seed %d: %d NPCs in batches of %d", seed, requested, batch_size)

            funnel = Funnel(claim_states=_all_states(Counter()))
            errors: list[NpcError] = []
            stopped: str | None = None
            processed = nodes_created = 0
            for offset in range(0, len(customer_ids), batch_size):
                batch_ids = customer_ids[offset : offset + batch_size]
                try:
                    journeys, created = self._run_batch(conn, seed, batch_ids, tested_at, errors)
                    funnel = funnel.plus(journeys)
                    nodes_created += created
                except GraphUnavailable as error:
                    errors.append(NpcError(tuple(batch_ids), error.message))
                    stopped = error.message
                except StoreError as error:
                    errors.append(NpcError(tuple(batch_ids), error.message))
                    stopped = error.message
                except GraphError as error:
                    errors.append(NpcError(tuple(batch_ids), error.message))
                    log.warning("journey batch at offset %d failed: %s", offset, error.message)
                processed += len(batch_ids)

                if on_progress is not None:
                    on_progress(
                        JourneyProgress(
                            seed,
                            requested,
                            processed,
                            funnel,
                            tuple(errors),
                            time.monotonic() - started,
                        )
                    )
                if stopped is None and should_stop is not None and should_stop():
                    stopped = "cancelled"
                if stopped is not None:
                    break

            if stopped is None:
                _record_milestones(conn, requested, funnel, errors)
        finally:
            conn.close()

        elapsed = time.monotonic() - started
        report = JourneyReport(
            seed, requested, funnel, tuple(errors), elapsed, batch_size, nodes_created, stopped
        )
        log.info(
            "journey run seed %d %s: %d NPCs written, %d quotes, %d policies, %d claims, "
            "%d NPCs failed, %.1f s",
            seed,
            "stopped" if stopped else "finished",
            funnel.npcs,
            funnel.quotes,
            funnel.policies,
            funnel.claims,
            report.failed_npcs,
            elapsed,
        )
        return report

    def _run_batch(
        self,
        conn: psycopg.Connection,
        seed: int,
        customer_ids: list[int],
        tested_at: datetime,
        errors: list[NpcError],
    ) -> tuple[list[steps.NpcJourney], int]:
        npcs = sampling.load_npcs(conn, seed, customer_ids)

        chosen: dict[int, tuple[PetRow, bool]] = {}
        need_new: list[int] = []
        for npc in npcs:
            customer_id = npc.customer.customer_id
            draws = steps.decisions(seed, customer_id)
            if npc.journey_pet is not None:
                chosen[customer_id] = (npc.journey_pet, True)
            elif steps.wants_new_pet(len(npc.population_pets), draws, self.settings):
                need_new.append(customer_id)
            else:
                chosen[customer_id] = (steps.pick_existing_pet(npc.population_pets, draws), False)

        acquired = sampling.acquire_pets(
            conn, seed, need_new, lambda customer_id, index: steps.new_pet(seed, customer_id, index)
        )
        for customer_id, pet in acquired.pets.items():
            chosen[customer_id] = (pet, True)
        for customer_id, reason in acquired.refused.items():
            errors.append(NpcError((customer_id,), reason))

        journeys = [
            steps.simulate_journey(
                seed, npc.customer, pet, is_new_pet=is_new, settings=self.settings
            )
            for npc in npcs
            if npc.customer.customer_id in chosen
            for pet, is_new in (chosen[npc.customer.customer_id],)
        ]
        rows = journey_rows(journeys, tested_at)
        created = self.graph.write(
            lambda tx: write_rows(tx, rows),
            operation=f"writing {len(journeys)} journeys to the graph",
        )
        return journeys, created


QUOTES_AT_SCALE_NPCS = 100_000
"""Journey runs of at least this many NPCs count as the quote-generation-at-scale check."""


def _record_milestones(
    conn: psycopg.Connection, requested: int, funnel: Funnel, errors: list[NpcError]
) -> None:
    """Record the milestone checks that a finished journey run covers."""
    population = milestones.population_size(conn)
    failed = sum(len(error.population_ids) for error in errors)
    complete = failed == 0 and funnel.npcs == requested

    milestones.record_check(
        conn,
        milestones.Check.CLAIM_JOURNEY,
        passed=complete and funnel.claims > 0,
        detail=(
            f"{funnel.npcs:,} NPCs: {funnel.quotes:,} quotes, {funnel.policies:,} policies, "
            f"{funnel.claims:,} claims, {failed:,} NPCs failed"
        ),
        population=population,
    )
    if requested >= QUOTES_AT_SCALE_NPCS:
        milestones.record_check(
            conn,
            milestones.Check.QUOTES_AT_SCALE,
            passed=complete and funnel.quotes == requested,
            detail=f"{funnel.quotes:,} quotes for {requested:,} sampled NPCs",
            population=population,
        )
