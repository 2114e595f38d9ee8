"""The quote pricing engine: a multiplicative rating formula for annual pet insurance premiums.

    annual premium = base rate(species)
                   x breed factor(breed risk group)
                   x age factor(species, age in whole years on the quote date)
                   x area factor(postcode area)
                   x cover factor(cover level)
                   x excess factor(excess)
                   x co-payment factor, when the pet is old enough to need one

The annual premium is rounded to the penny and the monthly premium is a twelfth of it, rounded to
the penny. Every factor is a table below, so a quote can be explained line by line
(`Price.factors`).

Calibration. The Association of British Insurers put the average annual premium in 2017 at £324
for dogs and £171 for cats ("Pet claims are through the WOOF", ABI news, May 2018,
https://www.abi.org.uk/news/news-articles/2018/05/pet-claims-are-through-the-woof/). The base
rates are set so that the mean premium over the population generator's dogs and cats, with the
cover and excess mix of `COVER_LEVELS` and `EXCESS_OPTIONS`, lands within 1% of those figures
(£324 and £171 with generator v2); `tests/graph/test_pricing_claims.py` checks 10%. The ABI
publishes no rabbit figure, so the rabbit base rate is an estimate. The relative factors (breed
groups, age bands, areas, cover, excess, co-payment) are estimates of how UK insurers rate, not
published figures.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class CoverLevel(StrEnum):
    """The four kinds of UK pet cover, from cheapest to most complete."""

    ACCIDENT_ONLY = "accident only"
    TIME_LIMITED = "time-limited"
    MAXIMUM_BENEFIT = "maximum benefit"
    LIFETIME = "lifetime"


@dataclass(frozen=True)
class CoverTerms:
    factor: float
    """Premium multiplier relative to lifetime cover."""
    benefit_limit: int
    """Most the policy pays, in pounds: per accident, per condition or per year."""
    share: float
    """Share of customers who ask for this cover."""


COVER_LEVELS: dict[CoverLevel, CoverTerms] = {
    # Pays for injuries only, up to the limit per accident.
    CoverLevel.ACCIDENT_ONLY: CoverTerms(factor=0.35, benefit_limit=2_000, share=0.10),
    # Pays each condition for 12 months after it starts, up to the limit.
    CoverLevel.TIME_LIMITED: CoverTerms(factor=0.60, benefit_limit=3_000, share=0.15),
    # Pays each condition up to the limit, with no time limit.
    CoverLevel.MAXIMUM_BENEFIT: CoverTerms(factor=0.80, benefit_limit=5_000, share=0.15),
    # Pays up to the limit every policy year, renewed for life.
    CoverLevel.LIFETIME: CoverTerms(factor=1.00, benefit_limit=7_500, share=0.60),
}

EXCESS_OPTIONS: dict[int, tuple[float, float]] = {
    # excess in pounds: (premium factor, share of customers who choose it)
    60: (1.10, 0.25),
    99: (1.00, 0.40),
    150: (0.92, 0.25),
    250: (0.82, 0.10),
}

BASE_RATES: dict[str, float] = {
    # Pounds a year for lifetime cover, £99 excess, standard breed, age factor 1, area factor 1.
    "dog": 368.0,
    "cat": 220.0,
    "rabbit": 150.0,
}

BREED_GROUPS: dict[str, dict[str, str]] = {
    # Breeds by claim risk. Flat-faced (brachycephalic) breeds and breeds prone to joint, spine
    # or heart disease rate higher.
    "dog": {
        **dict.fromkeys(
            (
                "Crossbreed", "Jack Russell Terrier", "Border Collie", "Cockapoo", "Cavapoo",
                "Labradoodle", "Border Terrier", "Whippet", "Lurcher", "Greyhound", "Poodle",
            ),
            "low",
        ),
        **dict.fromkeys(
            (
                "Labrador Retriever", "Cocker Spaniel", "English Springer Spaniel",
                "Golden Retriever", "Staffordshire Bull Terrier", "Shih Tzu", "Chihuahua",
                "Yorkshire Terrier", "Beagle", "Miniature Schnauzer", "Bichon Frise",
                "West Highland White Terrier", "Pomeranian", "Lhasa Apso", "Siberian Husky",
                "Hungarian Vizsla", "Weimaraner",
            ),
            "standard",
        ),
        **dict.fromkeys(
            (
                "German Shepherd", "Dachshund", "Cavalier King Charles Spaniel", "Boxer",
                "Rottweiler", "Bernese Mountain Dog", "Dobermann", "Cane Corso",
            ),
            "high",
        ),
        **dict.fromkeys(("French Bulldog", "Pug", "Bulldog"), "very high"),
    },
    "cat": {
        **dict.fromkeys(("Domestic Shorthair", "Domestic Longhair"), "low"),
        **dict.fromkeys(
            (
                "British Shorthair", "Siamese", "Bengal", "Burmese", "Norwegian Forest Cat",
                "Russian Blue", "Birman", "Devon Rex",
            ),
            "standard",
        ),
        **dict.fromkeys(("Ragdoll", "Maine Coon", "Sphynx"), "high"),
        **dict.fromkeys(("Persian", "Scottish Fold"), "very high"),
    },
}  # fmt: skip
"""Breeds missing here (every rabbit, any breed added later) rate as "standard"."""

RISK_GROUP_FACTORS: dict[str, float] = {
    "low": 0.85,
    "standard": 1.00,
    "high": 1.30,
    "very high": 1.65,
}

AGE_BANDS: dict[str, tuple[tuple[int, float], ...]] = {
    # (from age in whole years, factor), ascending; a band runs to the next band's start.
    "dog": ((0, 0.80), (1, 0.90), (4, 1.05), (7, 1.35), (9, 1.70), (11, 2.10)),
    "cat": ((0, 0.80), (1, 0.90), (5, 1.05), (9, 1.35), (12, 1.70)),
    "rabbit": ((0, 0.90), (1, 1.00), (4, 1.30), (6, 1.60)),
}

MINIMUM_AGE_DAYS = 56
"""Pets younger than eight weeks cannot be insured."""

MAXIMUM_ENTRY_AGE: dict[str, int] = {"dog": 10, "cat": 12, "rabbit": 6}
"""Older pets are offered accident-only cover whatever the customer asked for."""

CO_PAYMENT_AGE: dict[str, int] = {"dog": 8, "cat": 10, "rabbit": 5}
"""From this age in whole years the customer pays CO_PAYMENT_SHARE of every claim."""

CO_PAYMENT_SHARE = 0.20
CO_PAYMENT_FACTOR = 0.85
"""Premium multiplier when a co-payment applies."""

LONDON_AREAS = frozenset({"E", "EC", "N", "NW", "SE", "SW", "W", "WC"})
SOUTH_EAST_AREAS = frozenset(
    {
        "AL",
        "BR",
        "CM",
        "CR",
        "DA",
        "EN",
        "GU",
        "HA",
        "HP",
        "IG",
        "KT",
        "ME",
        "OX",
        "RG",
        "RH",
        "RM",
        "SG",
        "SL",
        "SM",
        "TN",
        "TW",
        "UB",
        "WD",
    }
)
CITY_AREAS = frozenset(
    {"B", "BS", "CF", "CV", "EH", "G", "L", "LE", "LS", "M", "NE", "NG", "S", "SO", "BN"}
)
RURAL_AREAS = frozenset(
    {"AB", "BT", "DD", "HS", "IV", "KW", "LD", "LL", "PA", "PH", "SA", "SY", "TD", "ZE"}
)
AREA_FACTORS: dict[str, float] = {
    # Regional differences in vet fees.
    "London": 1.30,
    "South East": 1.15,
    "city": 1.05,
    "rural": 0.90,
    "other": 1.00,
}


class NotInsurable(ValueError):
    """The pet cannot be quoted at all; the message gives the reason."""


@dataclass(frozen=True)
class Price:
    """A priced quote and the factors that produced it."""

    cover: CoverLevel
    excess: int
    co_payment: float
    """Share of each claim the customer pays, 0 when no co-payment applies."""
    benefit_limit: int
    annual_premium: float
    monthly_premium: float
    risk_group: str
    postcode_area: str
    pet_age_years: int
    factors: dict[str, float]
    """Each multiplier of the formula by name, base rate first."""


def price_quote(
    *,
    species: str,
    breed: str,
    date_of_birth: date,
    postcode: str,
    quoted_on: date,
    cover: CoverLevel,
    excess: int,
) -> Price:
    """Price cover for one pet on `quoted_on`.

    A pet past its species' maximum entry age is priced for accident-only cover whatever `cover`
    requests.

    Raises:
        NotInsurable: the pet is younger than eight weeks on `quoted_on`, or of a species the
            engine has no rates for.
        ValueError: the excess is not one on offer.
    """
    if species not in BASE_RATES:
        raise NotInsurable(f"no rates for {species}s; rated species: {', '.join(BASE_RATES)}")
    if excess not in EXCESS_OPTIONS:
        raise ValueError(f"excess £{excess} is not offered; choose one of {list(EXCESS_OPTIONS)}")

    age_days = (quoted_on - date_of_birth).days
    if age_days < MINIMUM_AGE_DAYS:
        raise NotInsurable(
            f"the pet is {age_days} days old on {quoted_on:%d/%m/%Y}; cover starts at 8 weeks"
        )
    age_years = whole_years(date_of_birth, quoted_on)

    if age_years > MAXIMUM_ENTRY_AGE[species]:
        cover = CoverLevel.ACCIDENT_ONLY
    terms = COVER_LEVELS[cover]
    risk_group = BREED_GROUPS.get(species, {}).get(breed, "standard")
    area = postcode_area(postcode)
    co_payment = CO_PAYMENT_SHARE if age_years >= CO_PAYMENT_AGE[species] else 0.0

    factors = {
        "base rate": BASE_RATES[species],
        "breed": RISK_GROUP_FACTORS[risk_group],
        "age": age_factor(species, age_years),
        "area": AREA_FACTORS[area_band(area)],
        "cover": terms.factor,
        "excess": EXCESS_OPTIONS[excess][0],
        "co-payment": CO_PAYMENT_FACTOR if co_payment else 1.0,
    }
    annual = 1.0
    for factor in factors.values():
        annual *= factor

    annual_premium = to_pennies(annual)
    return Price(
        cover=cover,
        excess=excess,
        co_payment=co_payment,
        benefit_limit=terms.benefit_limit,
        annual_premium=annual_premium,
        monthly_premium=to_pennies(annual_premium / 12),
        risk_group=risk_group,
        postcode_area=area,
        pet_age_years=age_years,
        factors=factors,
    )


def age_factor(species: str, age_years: int) -> float:
    """Return the age factor of the band that `age_years` falls in."""
    factor = AGE_BANDS[species][0][1]
    for start, band_factor in AGE_BANDS[species]:
        if age_years >= start:
            factor = band_factor
    return factor


def postcode_area(postcode: str) -> str:
    """Return the postcode area, the leading letters: "SW1A 1AA" -> "SW", "M1 2AB" -> "M"."""
    letters = []
    for character in postcode.strip().upper():
        if not character.isalpha():
            break
        letters.append(character)
    return "".join(letters)


def area_band(area: str) -> str:
    """Return the rating band of a postcode area."""
    if area in LONDON_AREAS:
        return "London"
    if area in SOUTH_EAST_AREAS:
        return "South East"
    if area in CITY_AREAS:
        return "city"
    if area in RURAL_AREAS:
        return "rural"
    return "other"


def whole_years(start: date, end: date) -> int:
    """Return the number of whole years from `start` to `end` (an age on a birthday rule)."""
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return years


def to_pennies(amount: float) -> float:
    """Round pounds to the penny, halves up."""
    return float(Decimal(repr(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
