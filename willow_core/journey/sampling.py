"""The journey's side of the population database: sampling NPCs, loading them, adding pets.

Sampling never sorts or scans the population. Customer ids are dense within each committed
batch, so the sampler reads the committed batches (one row per batch), draws distinct ranks in
`0 .. committed customers - 1` and maps each rank to an id, then loads exactly those customers by
primary key. The sample depends only on the seed and the set of committed batches.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import class_row

from willow_core.errors import JourneyError
from willow_core.population.models import (
    CUSTOMER_COLUMNS,
    MAX_PETS_PER_CUSTOMER,
    PET_COLUMNS,
    CustomerRow,
    PetRow,
)
from willow_core.store.db import wrap_errors

log = logging.getLogger("willow.journey.sampling")

SAMPLE_DOMAIN = 0x53414D504C45
"""Mixed into the sampling seed sequence ("SAMPLE" in ASCII), apart from the journey streams."""

_PET_ACQUISITION_LOCK_KEY = 0x57_4A_50_54
"""Advisory lock that serialises pet id assignment between concurrent journey runs."""


def sample_customer_ids(conn: psycopg.Connection, seed: int, count: int) -> list[int]:
    """Draw `count` distinct committed customer ids, in a order fixed by `seed`.

    Raises:
        JourneyError: fewer than `count` customers are committed.
        StoreError: the query failed.
    """
    with wrap_errors("reading committed batches"):
        rows = conn.execute(
            """
            SELECT first_customer_id, customers FROM batches
            WHERE committed_at IS NOT NULL AND customers > 0
            ORDER BY first_customer_id
            """
        ).fetchall()
    firsts = np.array([first for first, _ in rows], dtype=np.int64)
    sizes = np.array([size for _, size in rows], dtype=np.int64)
    total = int(sizes.sum()) if len(rows) else 0
    if count > total:
        raise JourneyError(
            f"a journey of {count:,} NPCs needs {count:,} customers but {total:,} are committed; "
            "generate more with willow generate, or ask for fewer NPCs"
        )

    rng = np.random.default_rng(np.random.SeedSequence([SAMPLE_DOMAIN, seed]))
    ranks = rng.choice(total, size=count, replace=False)
    ends = np.cumsum(sizes)
    batch = np.searchsorted(ends, ranks, side="right")
    ids = firsts[batch] + ranks - (ends[batch] - sizes[batch])
    return [int(customer_id) for customer_id in ids]


@dataclass(frozen=True)
class Npc:
    """A sampled customer with the pets a journey can use."""

    customer: CustomerRow
    population_pets: tuple[PetRow, ...]
    """Pets from the generator, in pet id order; pets acquired in any journey are excluded."""
    journey_pet: PetRow | None
    """The pet acquired in an earlier run of the same journey seed, if any."""


_CUSTOMER_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, CUSTOMER_COLUMNS))
_PET_COLUMNS = sql.SQL(", ").join(sql.Identifier("p", column) for column in PET_COLUMNS)

_SELECT_CUSTOMERS = sql.SQL("SELECT {} FROM customers WHERE customer_id = ANY(%s)").format(
    _CUSTOMER_COLUMNS
)
_SELECT_PETS = sql.SQL(
    """
    SELECT {}, jp.journey_seed
    FROM pets p LEFT JOIN journey_pets jp ON jp.pet_id = p.pet_id
    WHERE p.customer_id = ANY(%s)
    ORDER BY p.pet_id
    """
).format(_PET_COLUMNS)
_SELECT_JOURNEY_PETS = sql.SQL(
    """
    SELECT {} FROM journey_pets jp JOIN pets p ON p.pet_id = jp.pet_id
    WHERE jp.journey_seed = %s AND jp.customer_id = ANY(%s)
    """
).format(_PET_COLUMNS)
_COPY_PETS = sql.SQL("COPY pets ({}) FROM STDIN").format(
    sql.SQL(", ").join(map(sql.Identifier, PET_COLUMNS))
)


def load_npcs(conn: psycopg.Connection, seed: int, customer_ids: list[int]) -> list[Npc]:
    """Load the customers `customer_ids` (in that order) with their pets.

    Raises:
        StoreError: a query failed.
    """
    with wrap_errors(f"loading {len(customer_ids)} sampled customers"):
        customer_cursor = conn.cursor(row_factory=class_row(CustomerRow))
        customers = {
            row.customer_id: row
            for row in customer_cursor.execute(_SELECT_CUSTOMERS, (customer_ids,))
        }
        pet_rows = conn.execute(_SELECT_PETS, (customer_ids,)).fetchall()

    population_pets: dict[int, list[PetRow]] = {}
    journey_pets: dict[int, PetRow] = {}
    for *values, journey_seed in pet_rows:
        pet = PetRow(*values)
        if journey_seed is None:
            population_pets.setdefault(pet.customer_id, []).append(pet)
        elif journey_seed == seed:
            journey_pets[pet.customer_id] = pet

    missing = [customer_id for customer_id in customer_ids if customer_id not in customers]
    if missing:
        raise JourneyError(f"sampled customers {missing[:5]} were not found in the population")
    return [
        Npc(
            customers[customer_id],
            tuple(population_pets.get(customer_id, ())),
            journey_pets.get(customer_id),
        )
        for customer_id in customer_ids
    ]


@dataclass(frozen=True)
class AcquiredPets:
    """The outcome of `acquire_pets`."""

    pets: dict[int, PetRow]
    """The new (or previously acquired) pet of each customer that got one."""
    created: int
    """How many of them this call wrote."""
    refused: dict[int, str]
    """Customers who could not get a pet, with the reason."""


def acquire_pets(
    conn: psycopg.Connection,
    seed: int,
    customer_ids: Iterable[int],
    make_pet: Callable[[int, int], PetRow],
) -> AcquiredPets:
    """Give each customer a new pet for journey `seed` and write it to `pets`, in one transaction.

    A customer who already got a pet in this journey seed keeps it, so a rerun adds nothing.
    Otherwise the pet takes the customer's next free pet index, `make_pet(customer_id, index)`
    builds it, and it is recorded in `journey_pets`. An advisory lock serialises this step
    between concurrent journey runs, so two runs never hand out the same pet id.

    Raises:
        StoreError: the transaction failed; nothing from it is kept.
    """
    wanted = list(dict.fromkeys(customer_ids))
    pets: dict[int, PetRow] = {}
    refused: dict[int, str] = {}
    if not wanted:
        return AcquiredPets(pets, 0, refused)

    with wrap_errors(f"adding pets for {len(wanted)} customers"), conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PET_ACQUISITION_LOCK_KEY,))
        pet_cursor = conn.cursor(row_factory=class_row(PetRow))
        for pet in pet_cursor.execute(_SELECT_JOURNEY_PETS, (seed, wanted)):
            pets[pet.customer_id] = pet

        highest: dict[int, int] = dict(
            conn.execute(
                "SELECT customer_id, max(pet_id) FROM pets WHERE customer_id = ANY(%s) "
                "GROUP BY customer_id",
                (wanted,),
            ).fetchall()
        )
        created: list[PetRow] = []
        for customer_id in wanted:
            if customer_id in pets:
                continue
            top = highest.get(customer_id)
            index = 0 if top is None else top - customer_id * MAX_PETS_PER_CUSTOMER + 1
            if index >= MAX_PETS_PER_CUSTOMER:
                refused[customer_id] = (
                    f"customer {customer_id} already has {MAX_PETS_PER_CUSTOMER} pets, the most "
                    "a customer can have; no new pet added"
                )
                continue
            pet = make_pet(customer_id, index)
            pets[customer_id] = pet
            created.append(pet)

        if created:
            with conn.cursor() as cursor:
                with cursor.copy(_COPY_PETS) as copy:
                    for pet in created:
                        copy.write_row(pet)
                cursor.executemany(
                    "INSERT INTO journey_pets (journey_seed, customer_id, pet_id) "
                    "VALUES (%s, %s, %s)",
                    [(seed, pet.customer_id, pet.pet_id) for pet in created],
                )
    if created:
        log.info("journey seed %d added %d pets to the population", seed, len(created))
    return AcquiredPets(pets, len(created), refused)
