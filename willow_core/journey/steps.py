"""One NPC's journey: a pet, a quote, maybe a policy, maybe a claim.

Every random draw comes from generators seeded by (journey seed, NPC id) alone, so an NPC's
journey is the same in every run with that seed, whichever other NPCs are sampled with it and
in whatever batch. Three independent streams keep the steps apart:

- decisions: new pet or existing, which existing pet, policy or not, claim or not. These draws
  come first and in a fixed order, so changing the pricing or claim model never changes who
  converts.
- new pet: the attributes of a pet the NPC acquires, by the population generator's rules.
- details: dates, cover, excess and the claim.

Journeys happen in the QUOTE_WINDOW_DAYS before the population's reference day and are observed
on the day before it (OBSERVED_ON), like the population itself, so the output never depends on
the clock.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from willow_core.config import JourneySettings
from willow_core.journey.claims import Claim, simulate_claim
from willow_core.journey.pricing import (
    COVER_LEVELS,
    EXCESS_OPTIONS,
    CoverLevel,
    NotInsurable,
    Price,
    price_quote,
)
from willow_core.population.generator import REFERENCE_DATE, generate_pet
from willow_core.population.models import CustomerRow, PetRow

JOURNEY_DOMAIN = 0x4A4F55524E4559
"""Mixed into every journey seed sequence ("JOURNEY" in ASCII), so journey streams never equal
the generator's `SeedSequence([seed, batch_index])` streams."""

OBSERVED_ON = REFERENCE_DATE - timedelta(days=1)
"""The last day of the simulated journeys; a claim step after it has not happened yet."""

QUOTE_WINDOW_DAYS = 730
"""Quotes fall in the two years up to OBSERVED_ON, so some policies have already ended."""

POLICY_TERM_MONTHS = 12
MAX_START_DELAY_DAYS = 14
"""A policy starts on the quote day or up to this many days later."""

_DECISIONS, _NEW_PET, _DETAILS = 0, 1, 2

_COVER_CHOICES = tuple(COVER_LEVELS)
_COVER_WEIGHTS = tuple(terms.share for terms in COVER_LEVELS.values())
_EXCESS_CHOICES = tuple(EXCESS_OPTIONS)
_EXCESS_WEIGHTS = tuple(share for _, share in EXCESS_OPTIONS.values())


def npc_stream(seed: int, population_id: int, stream: int) -> np.random.Generator:
    """Return the random generator of one stream of one NPC's journey."""
    sequence = np.random.SeedSequence([JOURNEY_DOMAIN, seed, population_id], spawn_key=(stream,))
    return np.random.default_rng(sequence)


@dataclass(frozen=True)
class Decisions:
    """The uniform draws that decide an NPC's path through the funnel."""

    new_pet: float
    existing_pet: float
    policy: float
    claim: float


def decisions(seed: int, population_id: int) -> Decisions:
    """Return the NPC's decision draws for journey `seed`."""
    draws = npc_stream(seed, population_id, _DECISIONS).random(4)
    return Decisions(*(float(u) for u in draws))


def wants_new_pet(owned: int, draws: Decisions, settings: JourneySettings) -> bool:
    """Return whether an NPC who owns `owned` population pets gets a new one for the journey."""
    return owned == 0 or draws.new_pet < settings.new_pet_rate


def pick_existing_pet(pets: tuple[PetRow, ...], draws: Decisions) -> PetRow:
    """Return the population pet the journey quotes for; `pets` must be in pet id order."""
    return pets[min(len(pets) - 1, int(draws.existing_pet * len(pets)))]


def new_pet(seed: int, customer_id: int, index: int) -> PetRow:
    """Return the pet the NPC acquires in journey `seed`, as the customer's pet number `index`.

    The attributes depend only on (seed, customer), except the pet id and the microchip number,
    which the generator derives from the pet id.
    """
    return generate_pet(npc_stream(seed, customer_id, _NEW_PET), customer_id, index)


@dataclass(frozen=True)
class QuoteOutcome:
    quote_id: str
    quoted_on: date
    price: Price


@dataclass(frozen=True)
class PolicyOutcome:
    policy_id: str
    start_date: date
    end_date: date
    term_months: int
    status: str
    """"active" on OBSERVED_ON, or "expired" when its term has ended."""


@dataclass(frozen=True)
class ClaimOutcome:
    claim_id: str
    claim: Claim


@dataclass(frozen=True)
class NpcJourney:
    """Everything one NPC did in one journey run."""

    seed: int
    customer: CustomerRow
    pet: PetRow
    new_pet: bool
    """Whether the pet was acquired for this journey rather than taken from the population."""
    quote: QuoteOutcome | None
    not_insurable: str | None
    """Reason no quote was generated; None when there is a quote."""
    policy: PolicyOutcome | None
    claim: ClaimOutcome | None

    @property
    def population_id(self) -> int:
        return self.customer.customer_id


def quote_id(seed: int, population_id: int) -> str:
    return f"Q-{seed}-{population_id}"


def policy_id(seed: int, population_id: int) -> str:
    return f"P-{seed}-{population_id}"


def claim_id(seed: int, population_id: int) -> str:
    return f"C-{seed}-{population_id}-1"


def simulate_journey(
    seed: int,
    customer: CustomerRow,
    pet: PetRow,
    *,
    is_new_pet: bool,
    settings: JourneySettings,
) -> NpcJourney:
    """Run the quote, policy and claim steps for one NPC and the pet chosen for it."""
    population_id = customer.customer_id
    draws = decisions(seed, population_id)
    rng = npc_stream(seed, population_id, _DETAILS)

    earliest = max(
        OBSERVED_ON - timedelta(days=int(rng.integers(0, QUOTE_WINDOW_DAYS))),
        pet.date_of_birth + timedelta(days=56),
    )
    quoted_on = min(earliest, OBSERVED_ON)
    cover = _COVER_CHOICES[int(rng.choice(len(_COVER_CHOICES), p=_COVER_WEIGHTS))]
    excess = _EXCESS_CHOICES[int(rng.choice(len(_EXCESS_CHOICES), p=_EXCESS_WEIGHTS))]
    try:
        price = price_quote(
            species=pet.species,
            breed=pet.breed,
            date_of_birth=pet.date_of_birth,
            postcode=customer.postcode,
            quoted_on=quoted_on,
            cover=CoverLevel(cover),
            excess=excess,
        )
    except NotInsurable as refusal:
        return NpcJourney(seed, customer, pet, is_new_pet, None, str(refusal), None, None)
    quote = QuoteOutcome(quote_id(seed, population_id), quoted_on, price)

    if draws.policy >= settings.policy_rate:
        return NpcJourney(seed, customer, pet, is_new_pet, quote, None, None, None)
    delay = int(rng.integers(0, MAX_START_DELAY_DAYS + 1))
    start = min(quoted_on + timedelta(days=delay), OBSERVED_ON)
    end = _add_months(start, POLICY_TERM_MONTHS) - timedelta(days=1)
    status = "active" if end >= OBSERVED_ON else "expired"
    policy = PolicyOutcome(policy_id(seed, population_id), start, end, POLICY_TERM_MONTHS, status)

    if draws.claim >= settings.claim_rate:
        return NpcJourney(seed, customer, pet, is_new_pet, quote, None, policy, None)
    last_day = min(end, OBSERVED_ON)
    incident = start + timedelta(days=int(rng.integers(0, (last_day - start).days + 1)))
    claim = simulate_claim(
        rng,
        species=pet.species,
        incident_date=incident,
        as_of=OBSERVED_ON,
        excess=price.excess,
        co_payment=price.co_payment,
        benefit_limit=price.benefit_limit,
    )
    outcome = ClaimOutcome(claim_id(seed, population_id), claim)
    return NpcJourney(seed, customer, pet, is_new_pet, quote, None, policy, outcome)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate_day in (day.day, 30, 29, 28):  # 31 January + 1 month -> 28 or 29 February
        try:
            return date(year, month, candidate_day)
        except ValueError:
            continue
    raise AssertionError("every month has 28 days")
