"""Claims: the vet fee model and the workflow submitted -> assessed -> approved or declined -> paid.

Vet fees follow a log-normal distribution whose mean is the ABI's average claim for 2024, £685
(ABI data published 27 May 2025, reported by Insurance Times: "Pet insurance payouts top £1bn
for third consecutive year"). A log-normal with sigma 1.0 has the long right tail of real vet
bills: the median fee is about £415, and about 1 fee in 100 is above £4,200.
"""

import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

import numpy as np

from willow_core.journey.pricing import to_pennies

MEAN_VET_FEE = 685.0
"""Pounds; ABI average claim in 2024."""

VET_FEE_SIGMA = 1.0
"""Standard deviation of the fee's natural logarithm."""

MINIMUM_VET_FEE = 30.0
"""Pounds; a consultation costs at least this much."""

DECLINE_RATE = 0.08
"""Share of assessed claims declined for a reason other than the excess (an estimate)."""

CONDITIONS: dict[str, tuple[str, ...]] = {
    "dog": (
        "ear infection",
        "skin allergy",
        "gastroenteritis",
        "cruciate ligament rupture",
        "lameness",
        "dental disease",
        "swallowed foreign body",
        "lump removal",
        "laceration",
    ),
    "cat": (
        "cystitis",
        "dental disease",
        "hyperthyroidism",
        "road traffic accident",
        "abscess",
        "chronic kidney disease",
        "gastroenteritis",
        "skin allergy",
    ),
    "rabbit": ("dental disease", "gut stasis", "abscess", "ear infection", "fly strike"),
}

DECLINE_REASONS = (
    "pre-existing condition",
    "treatment not covered by the policy",
    "condition started before cover began",
)


class ClaimStatus(StrEnum):
    SUBMITTED = "submitted"
    ASSESSED = "assessed"
    APPROVED = "approved"
    DECLINED = "declined"
    PAID = "paid"


TRANSITIONS: dict[ClaimStatus, frozenset[ClaimStatus]] = {
    ClaimStatus.SUBMITTED: frozenset({ClaimStatus.ASSESSED}),
    ClaimStatus.ASSESSED: frozenset({ClaimStatus.APPROVED, ClaimStatus.DECLINED}),
    ClaimStatus.APPROVED: frozenset({ClaimStatus.PAID}),
    ClaimStatus.DECLINED: frozenset(),
    ClaimStatus.PAID: frozenset(),
}
"""The workflow: the states each state may move to. DECLINED and PAID are final."""

CLAIM_STATES: tuple[ClaimStatus, ...] = tuple(ClaimStatus)


class InvalidTransition(ValueError):
    """A claim was asked to move to a state the workflow does not allow from its current one."""


@dataclass(frozen=True)
class Claim:
    """A claim at one point of its workflow."""

    condition: str
    incident_date: date
    vet_fee: float
    status: ClaimStatus
    submitted_on: date
    assessed_on: date | None = None
    decided_on: date | None = None
    paid_on: date | None = None
    payout: float = 0.0
    """Pounds paid, or to be paid once approved; 0 for a declined claim."""
    decline_reason: str | None = None

    def advance(
        self, to: ClaimStatus, on: date, *, payout: float | None = None, reason: str | None = None
    ) -> "Claim":
        """Return the claim moved to `to` on `on`.

        Raises:
            InvalidTransition: the workflow does not allow `to` from the current status, or `on`
                is before the previous step.
        """
        if to not in TRANSITIONS[self.status]:
            raise InvalidTransition(f"a {self.status} claim cannot become {to}")
        previous = self.paid_on or self.decided_on or self.assessed_on or self.submitted_on
        if on < previous:
            raise InvalidTransition(f"{to} on {on} is before the previous step on {previous}")

        if to is ClaimStatus.ASSESSED:
            return replace(self, status=to, assessed_on=on)
        if to is ClaimStatus.APPROVED:
            return replace(self, status=to, decided_on=on, payout=payout or 0.0)
        if to is ClaimStatus.DECLINED:
            return replace(self, status=to, decided_on=on, payout=0.0, decline_reason=reason)
        return replace(self, status=to, paid_on=on)


def draw_vet_fee(rng: np.random.Generator) -> float:
    """Draw a vet fee in pounds around MEAN_VET_FEE with a long right tail."""
    mu = math.log(MEAN_VET_FEE) - VET_FEE_SIGMA**2 / 2  # makes the log-normal's mean MEAN_VET_FEE
    return to_pennies(max(MINIMUM_VET_FEE, float(rng.lognormal(mu, VET_FEE_SIGMA))))


def settle(vet_fee: float, *, excess: int, co_payment: float, benefit_limit: int) -> float:
    """Return what the policy pays for `vet_fee`: the fee less the excess, less the customer's
    co-payment share, capped at the benefit limit."""
    covered = max(0.0, vet_fee - excess) * (1.0 - co_payment)
    return to_pennies(min(covered, float(benefit_limit)))


def simulate_claim(
    rng: np.random.Generator,
    *,
    species: str,
    incident_date: date,
    as_of: date,
    excess: int,
    co_payment: float,
    benefit_limit: int,
) -> Claim:
    """Simulate one claim from the incident up to `as_of`, through the workflow.

    The claim is submitted on or before `as_of`. Each later step happens after a random delay
    and only if that day is not after `as_of`, so recent claims are still in progress. A claim
    whose fee does not exceed the excess is declined, as is a share DECLINE_RATE of the rest.
    """
    condition = CONDITIONS[species][int(rng.integers(len(CONDITIONS[species])))]
    vet_fee = draw_vet_fee(rng)
    room = (as_of - incident_date).days
    submitted_on = incident_date + timedelta(days=int(rng.integers(0, min(30, room) + 1)))
    assess_delay = timedelta(days=int(rng.integers(2, 22)))
    decide_delay = timedelta(days=int(rng.integers(1, 11)))
    pay_delay = timedelta(days=int(rng.integers(1, 8)))
    declined_by_assessor = bool(rng.random() < DECLINE_RATE)
    reason = DECLINE_REASONS[int(rng.integers(len(DECLINE_REASONS)))]

    claim = Claim(condition, incident_date, vet_fee, ClaimStatus.SUBMITTED, submitted_on)
    assessed_on = submitted_on + assess_delay
    if assessed_on > as_of:
        return claim
    claim = claim.advance(ClaimStatus.ASSESSED, assessed_on)

    decided_on = assessed_on + decide_delay
    if decided_on > as_of:
        return claim
    payout = settle(vet_fee, excess=excess, co_payment=co_payment, benefit_limit=benefit_limit)
    if payout <= 0:
        return claim.advance(ClaimStatus.DECLINED, decided_on, reason="fee within the excess")
    if declined_by_assessor:
        return claim.advance(ClaimStatus.DECLINED, decided_on, reason=reason)
    claim = claim.advance(ClaimStatus.APPROVED, decided_on, payout=payout)

    paid_on = decided_on + pay_delay
    if paid_on > as_of:
        return claim
    return claim.advance(ClaimStatus.PAID, paid_on)
