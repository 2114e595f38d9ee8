"""The batch generator: deterministic per (seed, batch) and within the documented ranges."""

from datetime import date

from willow_core.population.generator import REFERENCE_DATE, generate_batch
from willow_core.population.models import MAX_PETS_PER_CUSTOMER

OFCOM_DRAMA_PREFIXES = (
    "07700 900",
    "01632 960",
    "020 7946 0",
    "0113 496 0",
    "0114 496 0",
    "0115 496 0",
    "0116 496 0",
    "0117 496 0",
    "0118 496 0",
    "0121 496 0",
    "0131 496 0",
    "0141 496 0",
    "0151 496 0",
    "0161 496 0",
    "0191 498 0",
    "029 2018 0",
)
"""Ofcom's ranges of telephone numbers for drama, each followed by three digits."""


def test_batch_is_deterministic() -> None:
    assert generate_batch(11, 3, 3_000, 200) == generate_batch(11, 3, 3_000, 200)


def test_batches_differ_by_seed_and_index() -> None:
    base = generate_batch(11, 3, 3_000, 50).customers
    assert generate_batch(12, 3, 3_000, 50).customers != base
    assert [c.first_name for c in generate_batch(11, 4, 3_000, 50).customers] != [
        c.first_name for c in base
    ]


def test_batch_independent_of_generation_order() -> None:
    later_first = generate_batch(5, 9, 0, 100)
    generate_batch(5, 2, 0, 100)
    assert generate_batch(5, 9, 0, 100) == later_first


def test_customers_within_ranges() -> None:
    batch = generate_batch(1, 0, 10_000, 2_000)
    ids = [c.customer_id for c in batch.customers]
    assert ids == list(range(10_000, 12_000))
    for customer in batch.customers:
        age_at_creation = (customer.created_at.date() - customer.date_of_birth).days / 365.25
        assert 18 <= age_at_creation <= 90, customer
        assert customer.created_at.date() <= REFERENCE_DATE
        assert customer.email.rsplit("@", 1)[1] in {"example.com", "example.org", "example.net"}
        assert customer.phone.startswith(OFCOM_DRAMA_PREFIXES), customer.phone


def test_pets_follow_documented_shares() -> None:
    batch = generate_batch(2, 0, 0, 5_000)
    owners = {pet.customer_id for pet in batch.pets}
    assert 0.27 <= len(owners) / 5_000 <= 0.33
    chipped = [pet for pet in batch.pets if pet.microchipped]
    assert 0.66 <= len(chipped) / len(batch.pets) <= 0.74
    for pet in batch.pets:
        assert pet.pet_id // MAX_PETS_PER_CUSTOMER == pet.customer_id
        assert pet.date_of_birth < REFERENCE_DATE
        assert pet.date_of_birth > date(2000, 1, 1)
        if pet.microchipped:
            assert pet.microchip_number is not None
            assert len(pet.microchip_number) == 15
            assert pet.microchip_number.isdigit()
        else:
            assert pet.microchip_number is None
