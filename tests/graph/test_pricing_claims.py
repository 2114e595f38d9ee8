"""The pricing formula, the claim workflow and the determinism of single journeys."""

from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import pytest

from willow_core.config import JourneySettings
from willow_core.journey import claims, pricing, steps
from willow_core.journey.claims import ClaimStatus, InvalidTransition
from willow_core.journey.pricing import CoverLevel, NotInsurable, price_quote
from willow_core.population.generator import generate_batch

ABI_2017_DOG = 324.0
ABI_2017_CAT = 171.0


def test_price_is_product_of_factors() -> None:
    price = price_quote(
        species="dog",
        breed="French Bulldog",
        date_of_birth=date(2020, 3, 10),
        postcode="SW1A 1AA",
        quoted_on=date(2025, 3, 9),
        cover=CoverLevel.TIME_LIMITED,
        excess=150,
    )
    expected = 368.0 * 1.65 * 1.05 * 1.30 * 0.60 * 0.92  # age 4, London, no co-payment
    assert price.pet_age_years == 4
    assert price.postcode_area == "SW"
    assert price.risk_group == "very high"
    assert price.co_payment == 0.0
    assert price.annual_premium == pytest.approx(expected, abs=0.005)
    assert price.monthly_premium == pytest.approx(price.annual_premium / 12, abs=0.005)
    product = np.prod(list(price.factors.values()))
    assert price.annual_premium == pytest.approx(product, abs=0.005)


def test_older_pet_gets_co_payment() -> None:
    young = price_quote(
        species="cat", breed="Persian", date_of_birth=date(2016, 1, 1), postcode="M1 2AB",
        quoted_on=date(2025, 12, 31), cover=CoverLevel.LIFETIME, excess=99,
    )  # fmt: skip
    old = price_quote(
        species="cat", breed="Persian", date_of_birth=date(2015, 1, 1), postcode="M1 2AB",
        quoted_on=date(2025, 12, 31), cover=CoverLevel.LIFETIME, excess=99,
    )  # fmt: skip
    assert young.pet_age_years == 9
    assert young.co_payment == 0.0
    assert old.pet_age_years == 10
    assert old.co_payment == pricing.CO_PAYMENT_SHARE
    assert old.factors["co-payment"] == pricing.CO_PAYMENT_FACTOR


def test_pet_past_entry_age_gets_accident_only() -> None:
    price = price_quote(
        species="dog", breed="Crossbreed", date_of_birth=date(2012, 1, 1), postcode="LD1 5AA",
        quoted_on=date(2025, 6, 1), cover=CoverLevel.LIFETIME, excess=60,
    )  # fmt: skip
    assert price.cover is CoverLevel.ACCIDENT_ONLY
    assert price.benefit_limit == pricing.COVER_LEVELS[CoverLevel.ACCIDENT_ONLY].benefit_limit
    assert pricing.area_band(price.postcode_area) == "rural"


def test_pet_under_eight_weeks_not_insurable() -> None:
    with pytest.raises(NotInsurable, match="cover starts at 8 weeks"):
        price_quote(
            species="rabbit", breed="Rex", date_of_birth=date(2025, 11, 1), postcode="B1 1AA",
            quoted_on=date(2025, 12, 1), cover=CoverLevel.LIFETIME, excess=99,
        )  # fmt: skip


def test_unknown_excess_rejected() -> None:
    with pytest.raises(ValueError, match="excess £75 is not offered"):
        price_quote(
            species="dog", breed="Crossbreed", date_of_birth=date(2020, 1, 1), postcode="B1 1AA",
            quoted_on=date(2025, 1, 1), cover=CoverLevel.LIFETIME, excess=75,
        )  # fmt: skip


def test_postcode_area_letters() -> None:
    assert pricing.postcode_area("sw1a 1aa") == "SW"
    assert pricing.postcode_area("M1 2AB") == "M"
    assert pricing.postcode_area("EC1V 9HX") == "EC"
    assert pricing.postcode_area("") == ""


def test_mean_premiums_near_abi_figures() -> None:
    settings = JourneySettings()
    premiums: dict[str, list[float]] = defaultdict(list)
    for batch_index in range(6):
        batch = generate_batch(11, batch_index, batch_index * 1_000, 1_000)
        customers = {customer.customer_id: customer for customer in batch.customers}
        for pet in batch.pets:
            journey = steps.simulate_journey(
                5, customers[pet.customer_id], pet, is_new_pet=False, settings=settings
            )
            if journey.quote is not None:
                premiums[pet.species].append(journey.quote.price.annual_premium)

    assert len(premiums["dog"]) > 800
    assert len(premiums["cat"]) > 600
    assert float(np.mean(premiums["dog"])) == pytest.approx(ABI_2017_DOG, rel=0.10)
    assert float(np.mean(premiums["cat"])) == pytest.approx(ABI_2017_CAT, rel=0.10)


def test_vet_fees_average_abi_claim() -> None:
    rng = np.random.default_rng(1)
    fees = np.array([claims.draw_vet_fee(rng) for _ in range(40_000)])
    assert float(fees.mean()) == pytest.approx(claims.MEAN_VET_FEE, rel=0.05)
    assert float(np.median(fees)) < claims.MEAN_VET_FEE * 0.75, "no long right tail"
    assert fees.min() >= claims.MINIMUM_VET_FEE


def test_claim_workflow_order() -> None:
    claim = claims.Claim(
        "lameness", date(2025, 1, 1), 500.0, ClaimStatus.SUBMITTED, date(2025, 1, 2)
    )
    assessed = claim.advance(ClaimStatus.ASSESSED, date(2025, 1, 5))
    approved = assessed.advance(ClaimStatus.APPROVED, date(2025, 1, 6), payout=401.0)
    paid = approved.advance(ClaimStatus.PAID, date(2025, 1, 8))

    assert paid.status is ClaimStatus.PAID
    assert paid.payout == 401.0
    assert (paid.assessed_on, paid.decided_on, paid.paid_on) == (
        date(2025, 1, 5), date(2025, 1, 6), date(2025, 1, 8),
    )  # fmt: skip
    with pytest.raises(InvalidTransition, match="a submitted claim cannot become paid"):
        claim.advance(ClaimStatus.PAID, date(2025, 1, 9))
    with pytest.raises(InvalidTransition, match="cannot become"):
        paid.advance(ClaimStatus.DECLINED, date(2025, 1, 9))
    with pytest.raises(InvalidTransition, match="before the previous step"):
        assessed.advance(ClaimStatus.DECLINED, date(2025, 1, 4))


def test_settle_applies_excess_copay_limit() -> None:
    assert claims.settle(500.0, excess=99, co_payment=0.0, benefit_limit=7_500) == 401.0
    assert claims.settle(500.0, excess=100, co_payment=0.2, benefit_limit=7_500) == 320.0
    assert claims.settle(9_000.0, excess=60, co_payment=0.0, benefit_limit=2_000) == 2_000.0
    assert claims.settle(50.0, excess=99, co_payment=0.0, benefit_limit=7_500) == 0.0


def test_simulated_claims_follow_workflow() -> None:
    states: set[ClaimStatus] = set()
    for index in range(400):
        claim = claims.simulate_claim(
            np.random.default_rng(index),
            species="dog",
            incident_date=date(2025, 12, 31) - timedelta(days=index % 120),
            as_of=date(2025, 12, 31),
            excess=99,
            co_payment=0.0,
            benefit_limit=7_500,
        )
        states.add(claim.status)
        assert claim.submitted_on <= date(2025, 12, 31)
        dated = [claim.submitted_on, claim.assessed_on, claim.decided_on, claim.paid_on]
        present = [day for day in dated if day is not None]
        assert present == sorted(present)
        assert all(day <= date(2025, 12, 31) for day in present)
        if claim.status is ClaimStatus.DECLINED:
            assert claim.payout == 0.0
            assert claim.decline_reason
    assert states == set(ClaimStatus)


def test_journey_deterministic_per_seed_and_npc() -> None:
    batch = generate_batch(11, 0, 0, 200)
    customers = {customer.customer_id: customer for customer in batch.customers}
    settings = JourneySettings(policy_rate=1.0, claim_rate=1.0)
    pet = batch.pets[0]
    customer = customers[pet.customer_id]

    first = steps.simulate_journey(8, customer, pet, is_new_pet=False, settings=settings)
    again = steps.simulate_journey(8, customer, pet, is_new_pet=False, settings=settings)
    other_seed = steps.simulate_journey(9, customer, pet, is_new_pet=False, settings=settings)

    assert first == again
    assert first.quote is not None
    assert other_seed.quote is not None
    assert first.quote.quote_id != other_seed.quote.quote_id
    assert first.claim is not None
    third = steps.new_pet(8, customer.customer_id, 3)
    first_pet = steps.new_pet(8, customer.customer_id, 0)
    assert third.pet_id == customer.customer_id * 8 + 3
    assert third._replace(pet_id=0, microchip_number=None) == first_pet._replace(
        pet_id=0, microchip_number=None
    )
