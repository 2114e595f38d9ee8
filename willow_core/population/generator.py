"""Batch generator v1: UK customers and their pets, built row by row with Faker's en_GB locale.

The content of a batch depends only on (seed, batch index): both seed a NumPy `SeedSequence`,
which seeds Faker and a NumPy generator. So any customer can be regenerated from its run's seed
and its batch, and a resumed run ends identical to an uninterrupted one. Faker's output also
depends on its version, which `uv.lock` pins.

Contact details cannot reach a real person: emails use the reserved `example.com`, `example.org`
and `example.net` domains (RFC 2606) and phone numbers come from Ofcom's ranges set aside for
drama (07700 900000 to 07700 900999, 020 7946 0000 to 020 7946 0999).
"""

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

import numpy as np
from faker import Faker

from willow_core.population.models import (
    MAX_PETS_PER_CUSTOMER,
    CustomerRow,
    GeneratedBatch,
    PetRow,
)

GENERATOR_NAME = "faker-en_GB-v1"

REFERENCE_DATE = date(2026, 1, 1)
"""Ages and record dates count from this fixed day, so the output never depends on the clock."""

PET_OWNERSHIP_SHARE = 0.30
PETS_PER_OWNER = ((1, 0.80), (2, 0.15), (3, 0.05))
MICROCHIPPED_SHARE = 0.70


@dataclass(frozen=True)
class SpeciesProfile:
    share: float
    """Share of pets of this species."""
    max_age_years: int
    neutered_share: float
    breeds: tuple[str, ...]


SPECIES: dict[str, SpeciesProfile] = {
    "dog": SpeciesProfile(
        share=0.55,
        max_age_years=15,
        neutered_share=0.65,
        breeds=(
            "Labrador Retriever",
            "French Bulldog",
            "Cocker Spaniel",
            "Dachshund",
            "Golden Retriever",
            "English Springer Spaniel",
            "Border Collie",
            "Cockapoo",
            "Staffordshire Bull Terrier",
            "Jack Russell Terrier",
            "German Shepherd",
            "Crossbreed",
        ),
    ),
    "cat": SpeciesProfile(
        share=0.40,
        max_age_years=18,
        neutered_share=0.85,
        breeds=(
            "Domestic Shorthair",
            "Domestic Longhair",
            "British Shorthair",
            "Ragdoll",
            "Bengal",
            "Maine Coon",
            "Siamese",
            "Persian",
        ),
    ),
    "rabbit": SpeciesProfile(
        share=0.05,
        max_age_years=9,
        neutered_share=0.45,
        breeds=("Netherland Dwarf", "Lionhead", "Mini Lop", "Rex", "Dutch"),
    ),
}
SPECIES_NAMES = tuple(SPECIES)
SPECIES_WEIGHTS = tuple(profile.share for profile in SPECIES.values())

PET_NAMES = (
    "Luna",
    "Bella",
    "Milo",
    "Poppy",
    "Teddy",
    "Daisy",
    "Alfie",
    "Coco",
    "Bear",
    "Willow",
    "Ruby",
    "Max",
    "Bonnie",
    "Charlie",
    "Rosie",
    "Simba",
    "Nala",
    "Oscar",
    "Molly",
    "Ted",
    "Lola",
    "Archie",
    "Maisie",
    "Buster",
    "Pepper",
    "Biscuit",
    "Hazel",
    "Reggie",
    "Tilly",
    "Otis",
)

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

TITLES_BY_SEX = {"female": ("Mrs", "Ms", "Miss", "Dr"), "male": ("Mr", "Mr", "Mr", "Dr")}


@cache
def _faker() -> Faker:
    return Faker("en_GB")


def batch_seed(seed: int, batch_index: int) -> np.random.SeedSequence:
    """Return the seed sequence of one batch; the batch's content depends on nothing else."""
    return np.random.SeedSequence([seed, batch_index])


def generate_batch(
    seed: int, batch_index: int, first_customer_id: int, size: int
) -> GeneratedBatch:
    """Generate the customers `first_customer_id .. first_customer_id + size - 1` and their pets."""
    sequence = batch_seed(seed, batch_index)
    faker_seed, numpy_seed = sequence.generate_state(2, dtype=np.uint64)
    fake = _faker()
    fake.seed_instance(int(faker_seed))
    rng = np.random.default_rng(int(numpy_seed))

    customers: list[CustomerRow] = []
    pets: list[PetRow] = []
    for offset in range(size):
        customer = _customer(fake, rng, first_customer_id + offset)
        customers.append(customer)
        pets.extend(_pets(rng, customer.customer_id))
    return GeneratedBatch(customers, pets)


def _customer(fake: Faker, rng: np.random.Generator, customer_id: int) -> CustomerRow:
    sex = "female" if rng.random() < 0.51 else "male"
    first_name = fake.first_name_female() if sex == "female" else fake.first_name_male()
    last_name = fake.last_name()
    titles = TITLES_BY_SEX[sex]
    title = titles[int(rng.integers(len(titles)))]

    created_at = datetime.combine(REFERENCE_DATE, datetime.min.time(), UTC) - timedelta(
        seconds=int(rng.integers(0, 2 * 365 * 86_400))
    )
    age_days = int(rng.integers(18 * 366, 90 * 365))
    date_of_birth = created_at.date() - timedelta(days=age_days)

    local_part = f"{_ascii(first_name)}.{_ascii(last_name)}{int(rng.integers(1, 1000))}"
    email = f"{local_part}@{EMAIL_DOMAINS[int(rng.integers(len(EMAIL_DOMAINS)))]}"
    if rng.random() < 0.8:
        phone = f"07700 900{int(rng.integers(0, 1000)):03d}"
    else:
        phone = f"020 7946 {int(rng.integers(0, 1000)):04d}"

    address_line2 = fake.secondary_address() if rng.random() < 0.15 else None
    return CustomerRow(
        customer_id=customer_id,
        title=title,
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        email=email,
        phone=phone,
        address_line1=fake.street_address(),
        address_line2=address_line2,
        town=fake.city(),
        postcode=fake.postcode(),
        created_at=created_at,
    )


def _pets(rng: np.random.Generator, customer_id: int) -> list[PetRow]:
    if rng.random() >= PET_OWNERSHIP_SHARE:
        return []
    counts, weights = zip(*PETS_PER_OWNER, strict=True)
    count = int(rng.choice(counts, p=weights))

    pets = []
    for j in range(count):
        species = SPECIES_NAMES[int(rng.choice(len(SPECIES_NAMES), p=SPECIES_WEIGHTS))]
        profile = SPECIES[species]
        max_age_days = profile.max_age_years * 365
        microchipped = bool(rng.random() < MICROCHIPPED_SHARE)
        chip = f"826{int(rng.integers(0, 10**12)):012d}" if microchipped else None
        pets.append(
            PetRow(
                pet_id=customer_id * MAX_PETS_PER_CUSTOMER + j,
                customer_id=customer_id,
                name=PET_NAMES[int(rng.integers(len(PET_NAMES)))],
                species=species,
                breed=profile.breeds[int(rng.integers(len(profile.breeds)))],
                sex="female" if rng.random() < 0.5 else "male",
                date_of_birth=REFERENCE_DATE - timedelta(days=int(rng.integers(56, max_age_days))),
                microchipped=microchipped,
                microchip_number=chip,
                neutered=bool(rng.random() < profile.neutered_share),
            )
        )
    return pets


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())
