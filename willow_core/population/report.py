"""The distribution report: a sample of the population measured against the generator's targets.

Every target of `[population]` gets a check: a share (measured against the target share), a
mean (against the target mean, as a relative gap) or a range (the share of values inside it,
which must be 1). A check is flagged when its gap exceeds the tolerance. The sample comes from
the database (`sample_population`) or straight from the generator (`sample_from_batches`), so
tests can check 100,000 NPCs in seconds without a database.
"""

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from willow_core.config import is_reserved_domain
from willow_core.population.contact import is_drama_number
from willow_core.population.generator import (
    DAYS_PER_YEAR,
    DR_MIN_AGE,
    MIN_PET_AGE_DAYS,
    PET_AGE_GAMMA_SHAPE,
    REFERENCE_DATE,
    PopulationProfile,
    generate_batch,
)
from willow_core.population.models import GeneratedBatch
from willow_core.store.db import wrap_errors

log = logging.getLogger("willow.population.report")

SAMPLE_DOMAIN = 0x5245504F5254
"""Mixed into the sampling seed ("REPORT" in ASCII), so report samples differ from others."""

LONDON_AREAS = frozenset({"E", "EC", "N", "NW", "SE", "SW", "W", "WC"})

_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][0-9A-Z]?) [0-9][ABDEFGHJLNPQRSTUWXYZ]{2}$")
_CHIP = re.compile(r"^[0-9]{15}$")

MIN_REPORTED_BREED_SHARE = 0.05
"""Breeds with at least this share of their species get their own check."""

WOMEN_TITLES = frozenset({"Mrs", "Miss", "Ms"})
ANY_TITLES = frozenset({"Dr", "Mx"})


@dataclass
class PopulationSample:
    """Columns of sampled customers and of all their pets."""

    customers: dict[str, npt.NDArray[Any]]
    pets: dict[str, npt.NDArray[Any]]

    @property
    def size(self) -> int:
        return len(self.customers["customer_id"])


NOISE_STANDARD_ERRORS = 3.0
"""A check's tolerance widens by this many standard errors of its measurement, so sampling
noise in small groups (rabbits in a sample of 10,000, say) is not flagged as drift."""


@dataclass(frozen=True)
class Check:
    """One target measured on the sample."""

    name: str
    kind: str
    """"share", "mean" or "range"."""
    target: float
    measured: float
    tolerance: float
    """Largest gap allowed before sampling noise: absolute for shares, relative for means."""
    count: int
    """Values the measurement is over."""
    standard_error: float = 0.0
    """Standard error of the measurement, in the units of `gap`."""

    @property
    def gap(self) -> float:
        """Distance from the target: absolute for shares and ranges, relative for means."""
        if self.kind == "mean":
            return abs(self.measured - self.target) / self.target if self.target else 0.0
        return abs(self.measured - self.target)

    @property
    def allowed(self) -> float:
        """Largest gap that is not flagged: the tolerance plus sampling noise."""
        return self.tolerance + NOISE_STANDARD_ERRORS * self.standard_error

    @property
    def flagged(self) -> bool:
        return self.count == 0 or self.gap > self.allowed


@dataclass
class DistributionReport:
    """The checks of one sample."""

    sample_size: int
    pets: int
    checks: list[Check] = field(default_factory=list)

    @property
    def flagged(self) -> list[Check]:
        return [check for check in self.checks if check.flagged]


def sample_from_batches(batches: Iterable[GeneratedBatch]) -> PopulationSample:
    """Return a sample made of whole generated batches."""
    customer_parts: dict[str, list[npt.NDArray[Any]]] = {}
    pet_parts: dict[str, list[npt.NDArray[Any]]] = {}
    for batch in batches:
        for parts, columns in ((customer_parts, batch.customers), (pet_parts, batch.pets)):
            for name, array in zip(_names(columns), columns._arrays(), strict=True):
                parts.setdefault(name, []).append(array)
    return PopulationSample(
        {name: np.concatenate(arrays) for name, arrays in customer_parts.items()},
        {name: np.concatenate(arrays) for name, arrays in pet_parts.items()},
    )


def generate_sample(profile: PopulationProfile, size: int, seed: int = 1) -> PopulationSample:
    """Generate `size` customers in batches of 20,000 and return them as a sample."""
    batch_size = 20_000
    return sample_from_batches(
        generate_batch(seed, k, k * batch_size, min(batch_size, size - k * batch_size), profile)
        for k in range(-(-size // batch_size))
    )


def _names(columns: Any) -> list[str]:
    return [name for name in columns.__dataclass_fields__]


_CUSTOMER_FIELDS = (
    "customer_id", "title", "first_name", "last_name", "date_of_birth", "email", "phone",
    "address_line1", "address_line2", "town", "postcode", "created_at", "county", "sex",
)  # fmt: skip
_PET_FIELDS = (
    "pet_id", "customer_id", "species", "breed", "date_of_birth", "microchipped",
    "microchip_number", "neutered", "pre_existing_conditions",
)  # fmt: skip


def sample_population(
    conn: psycopg.Connection, size: int, seed: int = 1, run_id: int | None = None
) -> PopulationSample:
    """Draw up to `size` distinct committed customers (of one run, or all) with their pets.

    Customer ids are dense within each committed batch, so the sampler draws ranks over the
    committed batches and loads those customers by primary key; it never scans the table.

    Raises:
        StoreError: a query failed.
    """
    with wrap_errors("sampling the population"):
        rows = conn.execute(
            """
            SELECT first_customer_id, customers FROM batches
            WHERE committed_at IS NOT NULL AND customers > 0
              AND (%(run)s::int IS NULL OR run_id = %(run)s)
            ORDER BY first_customer_id
            """,
            {"run": run_id},
        ).fetchall()
        firsts = np.array([first for first, _ in rows], dtype=np.int64)
        sizes = np.array([count for _, count in rows], dtype=np.int64)
        total = int(sizes.sum())
        rng = np.random.default_rng(np.random.SeedSequence([SAMPLE_DOMAIN, seed]))
        ranks = np.sort(rng.choice(total, size=min(size, total), replace=False))
        ends = np.cumsum(sizes)
        batch = np.searchsorted(ends, ranks, side="right")
        ids = (firsts[batch] + ranks - (ends[batch] - sizes[batch])).tolist()

        customers: list[tuple[Any, ...]] = []
        pets: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), 10_000):
            chunk = ids[start : start + 10_000]
            customers += conn.execute(
                f"SELECT {', '.join(_CUSTOMER_FIELDS)} FROM customers "  # noqa: S608
                "WHERE customer_id = ANY(%s)",
                (chunk,),
            ).fetchall()
            pets += conn.execute(
                f"SELECT {', '.join(_PET_FIELDS)} FROM pets "  # noqa: S608
                "WHERE customer_id = ANY(%s)",
                (chunk,),
            ).fetchall()
    return PopulationSample(_columns(_CUSTOMER_FIELDS, customers), _columns(_PET_FIELDS, pets))


def _columns(names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> dict[str, npt.NDArray[Any]]:
    columns: dict[str, npt.NDArray[Any]] = {}
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        if name in ("date_of_birth",):
            columns[name] = np.array(values, dtype="datetime64[D]")
        elif name == "created_at":
            columns[name] = np.array(
                [value.replace(tzinfo=None) for value in values], dtype="datetime64[s]"
            )
        elif name in ("customer_id", "pet_id"):
            columns[name] = np.array(values, dtype=np.int64)
        elif name in ("microchipped", "neutered"):
            columns[name] = np.array(values, dtype=bool)
        else:
            array = np.empty(len(values), dtype=object)
            array[:] = values
            columns[name] = array
    return columns


# Checks


class _Checks:
    """Builds the checks of one report with its tolerances."""

    def __init__(self, share_tolerance: float, mean_tolerance: float) -> None:
        self.share_tolerance = share_tolerance
        self.mean_tolerance = mean_tolerance
        self.checks: list[Check] = []

    def share(self, name: str, mask: npt.NDArray[np.bool_], target: float) -> None:
        count = len(mask)
        measured = float(mask.mean()) if count else 0.0
        error = float(np.sqrt(target * (1 - target) / count)) if count else 0.0
        self.checks.append(
            Check(name, "share", target, measured, self.share_tolerance, count, error)
        )

    def everywhere(self, name: str, mask: npt.NDArray[np.bool_]) -> None:
        measured = float(mask.mean()) if len(mask) else 0.0
        self.checks.append(Check(name, "range", 1.0, measured, 0.0, len(mask)))

    def mean(self, name: str, values: npt.NDArray[np.float64], target: float) -> None:
        count = len(values)
        measured = float(values.mean()) if count else 0.0
        error = float(values.std() / np.sqrt(count) / target) if count and target else 0.0
        self.checks.append(Check(name, "mean", target, measured, self.mean_tolerance, count, error))


def evaluate(sample: PopulationSample, profile: PopulationProfile) -> DistributionReport:
    """Measure every target of `profile` on `sample`."""
    settings = profile.settings
    checks = _Checks(settings.report_share_tolerance, settings.report_mean_tolerance)
    _customer_checks(checks, sample, profile)
    _postcode_checks(checks, sample, profile)
    _pet_checks(checks, sample, profile)
    return DistributionReport(sample.size, len(sample.pets["pet_id"]), checks.checks)


def _customer_checks(checks: _Checks, sample: PopulationSample, profile: PopulationProfile) -> None:
    settings = profile.settings
    c = sample.customers
    female = c["sex"] == "female"
    checks.share("customers: female", female, settings.female_share)

    created = c["created_at"].astype("datetime64[D]")
    age = (created - c["date_of_birth"]).astype(np.int64) / DAYS_PER_YEAR
    youngest = settings.age_bands[0][0]
    checks.everywhere(
        f"customers: aged {youngest} to {settings.max_age}",
        (age >= youngest) & (age <= settings.max_age),
    )
    middles = (profile.age_starts_days + profile.age_widths_days / 2) / DAYS_PER_YEAR
    checks.mean("customers: mean age", age, float(np.sum(profile.age_probability * middles)))
    edges = [start for start, _ in settings.age_bands] + [settings.max_age]
    band = np.searchsorted(np.array(edges[1:-1], dtype=np.float64), age, side="right")
    for i, probability in enumerate(profile.age_probability.tolist()):
        checks.share(f"customers: aged {edges[i]} to {edges[i + 1]}", band == i, probability)

    title = c["title"]
    consistent = np.where(
        female,
        np.isin(title, [*WOMEN_TITLES, *ANY_TITLES]),
        np.isin(title, ["Mr", *ANY_TITLES]),
    )
    checks.everywhere("titles: consistent with sex", consistent)
    checks.everywhere(
        f"titles: Dr aged {DR_MIN_AGE} or over", (title != "Dr") | (age >= DR_MIN_AGE)
    )
    women = female & np.isin(title, list(WOMEN_TITLES))
    if women.any():
        steps = np.array([step for step, _ in settings.mrs_share_by_age], dtype=np.float64)
        shares = np.array([share for _, share in settings.mrs_share_by_age], dtype=np.float64)
        step = np.searchsorted(steps, age[women], side="right") - 1
        expected = float(np.where(step >= 0, shares[np.clip(step, 0, None)], 0.0).mean())
        checks.share(
            "titles: Mrs among women titled Mrs, Miss or Ms", title[women] == "Mrs", expected
        )
    eligible = float((age >= DR_MIN_AGE).mean())
    checks.share(
        "titles: Dr", title == "Dr", settings.dr_share * eligible * (1 - settings.mx_share)
    )
    checks.share("titles: Mx", title == "Mx", settings.mx_share)

    domains = np.array([is_reserved_domain(e.rsplit("@", 1)[-1]) for e in c["email"]], dtype=bool)
    checks.everywhere("emails: reserved domain (RFC 2606, RFC 6761)", domains)
    phones = c["phone"].tolist()
    checks.everywhere(
        "phones: in Ofcom's drama ranges",
        np.array([is_drama_number(phone) for phone in phones], dtype=bool),
    )
    mobile = np.array([phone.startswith("07") for phone in phones], dtype=bool)
    checks.share("phones: mobile", mobile, settings.mobile_share)
    flats = np.array([line.startswith("Flat ") for line in c["address_line1"]], dtype=bool)
    checks.share("addresses: flats", flats, settings.flat_share)


def _postcode_checks(checks: _Checks, sample: PopulationSample, profile: PopulationProfile) -> None:
    c = sample.customers
    districts = profile.districts
    position = {code: i for i, code in enumerate(districts.outward.tolist())}
    shaped = [_POSTCODE.match(postcode) for postcode in c["postcode"].tolist()]
    checks.everywhere(
        "postcodes: official format", np.array([m is not None for m in shaped], dtype=bool)
    )
    index = np.array([position.get(m.group(1), -1) if m else -1 for m in shaped], dtype=np.int64)
    known = index >= 0
    checks.everywhere("postcodes: district in the table", known)
    row = np.where(known, index, 0)
    belongs = known & (districts.town[row] == c["town"]) & (districts.county[row] == c["county"])
    checks.everywhere("addresses: town and county of the district", belongs)

    areas = np.array([_area(code) for code in districts.outward.tolist()], dtype=object)
    expected: dict[str, float] = {}
    for area, probability in zip(areas.tolist(), districts.probability.tolist(), strict=True):
        expected[area] = expected.get(area, 0.0) + probability
    measured = np.full(len(row), None, dtype=object)
    measured[known] = areas[row[known]]
    london = sum(share for area, share in expected.items() if area in LONDON_AREAS)
    checks.share(
        "postcodes: London postal districts", np.isin(measured, list(LONDON_AREAS)), london
    )
    for area in sorted(expected, key=expected.__getitem__, reverse=True)[:10]:
        checks.share(f"postcodes: area {area}", measured == area, expected[area])


def _area(outward: str) -> str:
    """Return the postcode area (the leading letters) of an outward code."""
    return outward[: len(outward) - len(outward.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))]


def _pet_checks(checks: _Checks, sample: PopulationSample, profile: PopulationProfile) -> None:
    settings = profile.settings
    c, p = sample.customers, sample.pets
    owner_ids, pets_per_owner = np.unique(p["customer_id"], return_counts=True)
    owners = np.isin(c["customer_id"], owner_ids)
    checks.share("pets: customers owning one or more", owners, settings.pet_owner_share)
    weights = np.array(settings.pets_per_owner, dtype=np.float64)
    expected_count = float(np.sum(np.arange(1, len(weights) + 1) * weights) / weights.sum())
    checks.mean("pets: pets per owner", pets_per_owner.astype(np.float64), expected_count)

    species = p["species"]
    reference = np.datetime64(REFERENCE_DATE.isoformat(), "D")
    kinds = zip(profile.species.tolist(), profile.species_probability.tolist(), strict=True)
    for kind, probability in kinds:
        mask = species == kind
        checks.share(f"pets: {kind}", mask, probability)
        breeds = profile.breeds[kind]
        for breed, weight in zip(breeds.values.tolist(), breeds.probability.tolist(), strict=True):
            if weight >= MIN_REPORTED_BREED_SHARE:
                checks.share(f"pets: {kind} breed {breed}", p["breed"][mask] == breed, weight)
        age = (reference - p["date_of_birth"][mask]).astype(np.int64) / DAYS_PER_YEAR
        oldest = settings.pet_max_age_years[kind]
        expected_age = truncated_gamma_mean(settings.pet_mean_age_years[kind], oldest)
        checks.mean(f"pets: {kind} mean age", age, expected_age)
        checks.everywhere(
            f"pets: {kind} aged 8 weeks to {oldest} years",
            (age >= MIN_PET_AGE_DAYS / DAYS_PER_YEAR) & (age <= oldest),
        )
        checks.share(f"pets: {kind} neutered", p["neutered"][mask], settings.neutered_shares[kind])

    chipped = p["microchipped"]
    checks.share("pets: microchipped", chipped, settings.microchipped_share)
    numbers = p["microchip_number"]
    checks.everywhere(
        "pets: microchip numbers of 15 digits",
        np.array([bool(_CHIP.match(number or "")) for number in numbers[chipped]], dtype=bool),
    )
    checks.everywhere(
        "pets: no microchip number without a microchip",
        np.array([number is None for number in numbers[~chipped]], dtype=bool),
    )
    conditions = np.array([x is not None for x in p["pre_existing_conditions"]], dtype=bool)
    checks.share("pets: pre-existing condition", conditions, settings.pre_existing_share)


def truncated_gamma_mean(mean_years: float, max_years: int) -> float:
    """Return the mean pet age the generator aims at: gamma(2) with mean `mean_years`, with ages
    above `max_years` redrawn (so the distribution is truncated there)."""
    scale = mean_years / PET_AGE_GAMMA_SHAPE
    x = max_years / scale
    # For shape 2, truncating at m gives E = scale * 2 * P(3, x) / P(2, x), where P(k, x) is the
    # regularised lower incomplete gamma function; for integer k it has this closed form.
    p2 = 1 - np.exp(-x) * (1 + x)
    p3 = 1 - np.exp(-x) * (1 + x + x * x / 2)
    return float(2 * scale * p3 / p2)
