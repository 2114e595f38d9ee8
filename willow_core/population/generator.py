"""Batch generator v2: UK customers and their pets, generated as NumPy columns.

The content of a batch depends only on (seed, batch index) and the run's population settings:
`numpy.random.SeedSequence([seed, batch_index])` seeds one NumPy generator, which draws every
column in a fixed order. So any customer can be regenerated from its run's seed and its batch,
and a resumed run ends identical to an uninterrupted one. Output also depends on the NumPy and
Faker versions (`uv.lock` pins both) and on the reference tables, whose fingerprints a run
records.

What the defaults aim at (each is a `[population]` setting):

- names with UK frequencies (Faker's en_GB lists, ranked by ONS frequency), with a share drawn
  from the most popular names of the customer's birth decade;
- titles consistent with sex and age; ages 18 to 90 shaped like the UK adult population;
- real postcode districts weighted by population, a valid inward code, and the district's town
  and county;
- emails under reserved domains only; phones only in Ofcom's drama ranges;
- about 30% of customers owning pets; species, breeds, ages, microchips, neutering and
  pre-existing conditions per species.
"""

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from willow_core.config import PopulationSettings
from willow_core.errors import ConfigError
from willow_core.population import tables
from willow_core.population.contact import MOBILE_PREFIX
from willow_core.population.models import (
    MAX_PETS_PER_CUSTOMER,
    CustomerColumns,
    GeneratedBatch,
    IntArray,
    ObjectArray,
    PetColumns,
    PetRow,
)

GENERATOR_NAME = "numpy-uk-v2"

REFERENCE_DATE = date(2026, 1, 1)
"""Ages and record dates count from this fixed day, so the output never depends on the clock."""

RECORD_SPAN_DAYS = 2 * 365
"""Customers' records were created within this many days before REFERENCE_DATE."""

DAYS_PER_YEAR = 365.25

MIN_PET_AGE_DAYS = 60
"""Youngest pet, in days: insurers cover pets from 8 weeks (56 days)."""

PET_AGE_GAMMA_SHAPE = 2.0
"""Pet ages follow a gamma distribution with this shape, scaled to each species' mean age."""

DR_MIN_AGE = 27
"""Youngest customer titled Dr."""

CHIP_PREFIXES = (("826", 0.45), ("985", 0.15), ("977", 0.15), ("981", 0.15), ("941", 0.10))
"""First three digits of ISO 11784 microchip numbers: the UK's country code (826) or a
manufacturer code, with an estimated share of each among UK pets."""

_CHIP_MULTIPLIER = 387_420_489
"""Odd and not a multiple of 5, so pet_id * this mod 10**12 is unique for every pet id."""

_CHIP_OFFSET = 173_205_080_756

UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"), dtype=object)
"""Letters that may end a UK postcode (never C, I, K, M, O or V)."""

EMAIL_FORMATS = (
    "{0}.{1}@{4}",
    "{0}{1}{2}@{4}",
    "{0}.{1}{2}@{4}",
    "{0[0]}.{1}@{4}",
    "{0}_{1}{3:02d}@{4}",
    "{0}{1[0]}{2}@{4}",
    "{1}.{0}@{4}",
)
"""Email address formats: {0} first name, {1} surname (both lower-case ASCII), {2} a number
from 1 to 999, {3} the two-digit birth year, {4} the domain."""

MAX_HOUSE_NUMBER = 350
MAX_FLAT_NUMBER = 25

INWARD_CODES = np.array(
    [f" {sector}{a}{b}" for sector in range(10) for a in UNIT_LETTERS for b in UNIT_LETTERS],
    dtype=object,
)
"""Every valid inward code, with the space that follows the outward code."""

HOUSE_NUMBERS = np.array([f"{number} " for number in range(MAX_HOUSE_NUMBER + 1)], dtype=object)
FLAT_PREFIXES = np.array(
    ["", *(f"Flat {number}, " for number in range(1, MAX_FLAT_NUMBER))], dtype=object
)
THREE_DIGITS = np.array([f"{number:03d}" for number in range(1000)], dtype=object)

_REFERENCE_DAY = np.datetime64(REFERENCE_DATE.isoformat(), "D")
_REFERENCE_SECOND = np.datetime64(REFERENCE_DATE.isoformat(), "s")


@dataclass(frozen=True)
class PopulationProfile:
    """Settings with their reference tables loaded: everything generation needs but the seed."""

    settings: PopulationSettings
    districts: tables.Districts
    breeds: dict[str, tables.Choices]
    conditions: dict[str, tables.Choices]
    names: tables.Names
    streets: tables.Choices
    pet_names: tables.Choices
    species: npt.NDArray[np.object_]
    species_probability: npt.NDArray[np.float64]
    age_starts_days: npt.NDArray[np.int64]
    age_widths_days: npt.NDArray[np.int64]
    age_probability: npt.NDArray[np.float64]
    fingerprints: dict[str, str]
    """SHA-256 of the district and breed tables, recorded with a run."""

    def describe(self) -> dict[str, Any]:
        """Return the settings and table fingerprints as JSON-ready data, as a run stores them."""
        return {
            "generator": GENERATOR_NAME,
            "settings": self.settings.model_dump(mode="json"),
            "fingerprints": dict(self.fingerprints),
        }


def build_profile(settings: PopulationSettings | None = None) -> PopulationProfile:
    """Load the reference tables for `settings` (defaults when None), cached per settings.

    Raises:
        ConfigError: a table is missing or malformed, or a species has no breeds.
    """
    settings = settings or PopulationSettings()
    return _build_profile(settings.model_dump_json())


@cache
def _build_profile(settings_json: str) -> PopulationProfile:
    settings = PopulationSettings.model_validate_json(settings_json)
    districts_path = settings.districts_file or tables.data_path("postcode_districts.csv")
    breeds_path = settings.breeds_file or tables.data_path("breeds.csv")
    districts = tables.load_districts(districts_path)
    breeds = tables.load_breeds(breeds_path)
    conditions = tables.load_conditions()

    # Sorted, because a run stores its settings as jsonb, which does not keep key order, and the
    # species' order decides which species each random draw picks.
    species = sorted(name for name, share in settings.species_shares.items() if share > 0)
    for name in species:
        if name not in breeds:
            raise ConfigError(
                f"[population] species_shares: {name!r} has no breeds in {breeds_path}; "
                "add its breeds there or drop it"
            )
        for setting in ("pet_mean_age_years", "pet_max_age_years", "neutered_shares"):
            if name not in getattr(settings, setting):
                raise ConfigError(f"[population] {setting}: missing a value for {name!r}")
    shares = np.array([settings.species_shares[name] for name in species], dtype=np.float64)

    starts = [start for start, _ in settings.age_bands]
    ends = [*starts[1:], settings.max_age]
    # A band of ages [a, b) draws day counts from ceil(a * 365.25) + 1, so the customer has had
    # the a-th birthday whatever the leap years. It draws up to floor(b * 365.25) - 2, so the
    # age in days over 365.25 stays below b, and within max_age for the last band.
    start_days = np.array([int(np.ceil(a * DAYS_PER_YEAR)) + 1 for a in starts], dtype=np.int64)
    end_days = np.array([int(np.floor(b * DAYS_PER_YEAR)) - 2 for b in ends], dtype=np.int64)
    age_weights = np.array([weight for _, weight in settings.age_bands], dtype=np.float64)
    if age_weights.sum() <= 0:
        raise ConfigError("[population] age_bands: the weights must have a positive sum")

    return PopulationProfile(
        settings=settings,
        districts=districts,
        breeds=breeds,
        conditions=conditions,
        names=tables.load_names(),
        streets=tables.load_streets(),
        pet_names=tables.load_weighted("pet_names.csv", "name"),
        species=np.array(species, dtype=object),
        species_probability=shares / shares.sum(),
        age_starts_days=start_days,
        age_widths_days=end_days - start_days,
        age_probability=age_weights / age_weights.sum(),
        fingerprints={
            "districts": tables.fingerprint(districts_path),
            "breeds": tables.fingerprint(breeds_path),
        },
    )


def profile_from_run(described: dict[str, Any] | None) -> PopulationProfile:
    """Rebuild the profile a run was created with (the defaults for runs that stored none).

    Raises:
        ConfigError: this host's reference tables differ from the ones the run was created with.
    """
    if not described:
        return build_profile()
    settings = PopulationSettings.model_validate(described["settings"])
    profile = build_profile(settings)
    for table, expected in described.get("fingerprints", {}).items():
        if profile.fingerprints.get(table) != expected:
            raise ConfigError(
                f"the {table} table on this host differs from the one the run was created with; "
                "install the same Willow version (or the same table file) on every host"
            )
    return profile


def batch_seed(seed: int, batch_index: int) -> np.random.SeedSequence:
    """Return the seed sequence of one batch; the batch's content depends on nothing else."""
    return np.random.SeedSequence([seed, batch_index])


def generate_batch(
    seed: int,
    batch_index: int,
    first_customer_id: int,
    size: int,
    profile: PopulationProfile | None = None,
) -> GeneratedBatch:
    """Generate the customers `first_customer_id .. first_customer_id + size - 1` and their pets.

    Args:
        profile: the run's population profile; None means the default settings.
    """
    profile = profile or build_profile()
    rng = np.random.default_rng(batch_seed(seed, batch_index))
    customers = _customers(rng, profile, first_customer_id, size)
    pets = _pets_of(rng, profile, customers.customer_id)
    return GeneratedBatch(customers, pets)


def generate_pet(
    rng: np.random.Generator,
    customer_id: int,
    index: int,
    profile: PopulationProfile | None = None,
) -> PetRow:
    """Generate the customer's pet number `index` (0-based) from `rng`, by the population rules.

    Raises:
        ValueError: `index` is not below MAX_PETS_PER_CUSTOMER, so the pet id would collide.
    """
    if not 0 <= index < MAX_PETS_PER_CUSTOMER:
        raise ValueError(f"pet index {index} is outside 0..{MAX_PETS_PER_CUSTOMER - 1}")
    owners = np.array([customer_id], dtype=np.int64)
    pets = _pet_columns(rng, profile or build_profile(), owners, np.array([index]))
    return pets[0]


# Customers


def _customers(
    rng: np.random.Generator, profile: PopulationProfile, first_id: int, n: int
) -> CustomerColumns:
    settings = profile.settings
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    female = rng.random(n) < settings.female_share

    record_age_seconds = rng.integers(0, RECORD_SPAN_DAYS * 86_400, n)
    created_at = _REFERENCE_SECOND - record_age_seconds.astype("timedelta64[s]")
    created_day = created_at.astype("datetime64[D]")

    band = rng.choice(len(profile.age_probability), size=n, p=profile.age_probability)
    age_days = profile.age_starts_days[band] + (
        rng.random(n) * profile.age_widths_days[band]
    ).astype(np.int64)
    date_of_birth = created_day - age_days.astype("timedelta64[D]")
    age_years = age_days / DAYS_PER_YEAR

    names = profile.names
    first = _first_names(rng, profile, female, date_of_birth)
    last = rng.choice(len(names.surnames), size=n, p=names.surname_probability)
    title = _titles(rng, settings, female, age_years)

    district = rng.choice(
        len(profile.districts.probability), size=n, p=profile.districts.probability
    )
    postcode = _postcodes(rng, profile, district)
    address_line1, address_line2 = _addresses(rng, profile, district)
    email = _emails(
        rng,
        settings.email_domains,
        names.first_ascii[first],
        names.surname_ascii[last],
        date_of_birth,
    )
    phone = _phones(rng, profile, district)

    sex = np.where(female, "female", "male").astype(object)
    return CustomerColumns(
        customer_id=ids,
        title=title,
        first_name=names.first_names[first],
        last_name=names.surnames[last],
        date_of_birth=date_of_birth,
        email=email,
        phone=phone,
        address_line1=address_line1,
        address_line2=address_line2,
        town=profile.districts.town[district],
        postcode=postcode,
        created_at=created_at,
        county=profile.districts.county[district],
        sex=sex,
    )


def _first_names(
    rng: np.random.Generator,
    profile: PopulationProfile,
    female: npt.NDArray[np.bool_],
    date_of_birth: npt.NDArray[np.datetime64],
) -> IntArray:
    """Return indices into the first-name table: a share from the birth decade's top ten."""
    n = len(female)
    names = np.empty(n, dtype=np.int64)
    birth_year = date_of_birth.astype("datetime64[Y]").astype(np.int64) + 1970
    last_decade = len(tables.COHORT_DECADES) - 1
    decade = np.clip((birth_year - tables.COHORT_DECADES[0]) // 10, 0, last_decade)
    from_cohort = rng.random(n) < profile.settings.cohort_name_share
    rank = rng.choice(10, size=n, p=tables.COHORT_RANK_WEIGHTS)
    for sex, mask in (("female", female), ("male", ~female)):
        overall, probability = profile.names.first[sex]
        drawn = overall[rng.choice(len(overall), size=n, p=probability)]
        cohort = profile.names.cohort[sex][decade, rank]
        names[mask] = np.where(from_cohort, cohort, drawn)[mask]
    return names


def _titles(
    rng: np.random.Generator,
    settings: PopulationSettings,
    female: npt.NDArray[np.bool_],
    age_years: npt.NDArray[np.float64],
) -> ObjectArray:
    n = len(female)
    steps = np.array([age for age, _ in settings.mrs_share_by_age], dtype=np.float64)
    shares = np.array([share for _, share in settings.mrs_share_by_age], dtype=np.float64)
    step = np.searchsorted(steps, age_years, side="right") - 1
    mrs_share = np.where(step >= 0, shares[np.clip(step, 0, None)], 0.0)

    married, ms, doctor, mx = (rng.random(n) for _ in range(4))
    women = np.where(married < mrs_share, "Mrs", np.where(ms < settings.ms_share, "Ms", "Miss"))
    title = np.where(female, women, "Mr").astype(object)
    title[(doctor < settings.dr_share) & (age_years >= DR_MIN_AGE)] = "Dr"
    title[mx < settings.mx_share] = "Mx"
    return title


def _postcodes(
    rng: np.random.Generator, profile: PopulationProfile, district: IntArray
) -> ObjectArray:
    inward = INWARD_CODES[rng.integers(0, len(INWARD_CODES), len(district))]
    result: ObjectArray = profile.districts.outward[district] + inward
    return result


def _addresses(
    rng: np.random.Generator, profile: PopulationProfile, district: IntArray
) -> tuple[ObjectArray, ObjectArray]:
    settings = profile.settings
    n = len(district)
    streets = profile.streets
    street = streets.values[rng.choice(len(streets.values), size=n, p=streets.probability)]
    house = np.clip(np.exp(rng.normal(2.6, 1.0, n)), 1, MAX_HOUSE_NUMBER).astype(np.int64)
    flat = np.where(rng.random(n) < settings.flat_share, rng.integers(1, MAX_FLAT_NUMBER, n), 0)
    line1: ObjectArray = FLAT_PREFIXES[flat] + HOUSE_NUMBERS[house] + street
    line2 = np.full(n, None, dtype=object)
    given = rng.random(n) < settings.locality_share
    line2[given] = profile.districts.locality[district[given]]
    return line1, line2


def _emails(
    rng: np.random.Generator,
    domains: list[str],
    first: ObjectArray,
    last: ObjectArray,
    date_of_birth: npt.NDArray[np.datetime64],
) -> ObjectArray:
    """Return email addresses in one of EMAIL_FORMATS, under the reserved `domains`."""
    n = len(first)
    domain = np.array(domains, dtype=object)[rng.integers(0, len(domains), n)]
    pattern = rng.integers(0, len(EMAIL_FORMATS), n)
    number = rng.integers(1, 1000, n)
    year = (date_of_birth.astype("datetime64[Y]").astype(np.int64) + 1970) % 100
    formats = [EMAIL_FORMATS[p] for p in pattern.tolist()]
    return _objects(
        [
            template.format(f, s, k, y, d)
            for template, f, s, k, y, d in zip(
                formats, first, last, number.tolist(), year.tolist(), domain, strict=True
            )
        ]
    )


def _phones(
    rng: np.random.Generator, profile: PopulationProfile, district: IntArray
) -> ObjectArray:
    n = len(district)
    mobile = rng.random(n) < profile.settings.mobile_share
    digits = THREE_DIGITS[rng.integers(0, 1000, n)]
    prefix = np.where(mobile, MOBILE_PREFIX, profile.districts.landline_prefix[district])
    result: ObjectArray = prefix.astype(object) + digits
    return result


# Pets


def _pets_of(
    rng: np.random.Generator, profile: PopulationProfile, customer_ids: IntArray
) -> PetColumns:
    settings = profile.settings
    n = len(customer_ids)
    owner = rng.random(n) < settings.pet_owner_share
    weights = np.array(settings.pets_per_owner, dtype=np.float64)
    count = np.where(owner, rng.choice(len(weights), size=n, p=weights / weights.sum()) + 1, 0)
    owners = np.repeat(customer_ids, count)
    starts = np.repeat(np.cumsum(count) - count, count)
    index = np.arange(len(owners)) - starts
    return _pet_columns(rng, profile, owners, index)


def _pet_columns(
    rng: np.random.Generator, profile: PopulationProfile, owners: IntArray, index: IntArray
) -> PetColumns:
    settings = profile.settings
    n = len(owners)
    pet_id = owners * MAX_PETS_PER_CUSTOMER + index
    species_index = rng.choice(len(profile.species), size=n, p=profile.species_probability)
    species = profile.species[species_index]
    pet_names = profile.pet_names
    name = pet_names.values[rng.choice(len(pet_names.values), size=n, p=pet_names.probability)]
    female = rng.random(n) < 0.5

    breed = np.empty(n, dtype=object)
    age_days = np.empty(n, dtype=np.int64)
    neutered = np.empty(n, dtype=bool)
    condition = np.full(n, None, dtype=object)
    has_condition = rng.random(n) < settings.pre_existing_share
    for i, kind in enumerate(profile.species.tolist()):
        mask = species_index == i
        count = int(mask.sum())
        breeds = profile.breeds[kind]
        breed[mask] = breeds.values[
            rng.choice(len(breeds.values), size=count, p=breeds.probability)
        ]
        age_days[mask] = _pet_ages(
            rng,
            count,
            settings.pet_mean_age_years[kind],
            settings.pet_max_age_years[kind],
        )
        neutered[mask] = rng.random(count) < settings.neutered_shares[kind]
        conditions = profile.conditions.get(kind)
        if conditions is not None:
            picked = conditions.values[
                rng.choice(len(conditions.values), size=count, p=conditions.probability)
            ]
            affected = has_condition[mask]
            chosen = np.full(count, None, dtype=object)
            chosen[affected] = picked[affected]
            condition[mask] = chosen

    microchipped = rng.random(n) < settings.microchipped_share
    prefix_values = np.array([p for p, _ in CHIP_PREFIXES], dtype=object)
    prefix_weights = np.array([w for _, w in CHIP_PREFIXES], dtype=np.float64)
    prefix = prefix_values[rng.choice(len(prefix_values), size=n, p=prefix_weights)]
    serial = (pet_id * _CHIP_MULTIPLIER + _CHIP_OFFSET) % 10**12
    chip = _objects(
        [
            f"{p}{s:012d}" if chipped else None
            for p, s, chipped in zip(prefix, serial.tolist(), microchipped.tolist(), strict=True)
        ]
    )

    return PetColumns(
        pet_id=pet_id.astype(np.int64),
        customer_id=owners.astype(np.int64),
        name=name,
        species=species,
        breed=breed,
        sex=np.where(female, "female", "male").astype(object),
        date_of_birth=_REFERENCE_DAY - age_days.astype("timedelta64[D]"),
        microchipped=microchipped,
        microchip_number=chip,
        neutered=neutered,
        pre_existing_conditions=condition,
    )


def _pet_ages(rng: np.random.Generator, n: int, mean_years: float, max_years: int) -> IntArray:
    """Draw ages in days: gamma-distributed with the given mean, redrawn above the maximum."""
    scale = mean_years * DAYS_PER_YEAR / PET_AGE_GAMMA_SHAPE
    highest = int(max_years * DAYS_PER_YEAR)
    ages = rng.gamma(PET_AGE_GAMMA_SHAPE, scale, n)
    too_old = ages > highest
    while too_old.any():
        ages[too_old] = rng.gamma(PET_AGE_GAMMA_SHAPE, scale, int(too_old.sum()))
        too_old = ages > highest
    return np.maximum(ages.astype(np.int64), MIN_PET_AGE_DAYS)


def _objects(values: list[Any]) -> ObjectArray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
