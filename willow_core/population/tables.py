"""Reference tables of the generator: postcode districts, names, streets, breeds and conditions.

The tables ship as package data (see `data/SOURCES.md` for sources and licences); first names
and surnames come from Faker's `en_GB` provider, which lists them by ONS frequency. Every table
is read once per process and kept as NumPy arrays of values and probabilities.
"""

import csv
import hashlib
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from faker.providers.person.en_GB import Provider as EnGbPeople

from willow_core.errors import ConfigError
from willow_core.population.models import IntArray, ObjectArray

FloatArray = npt.NDArray[np.float64]

FIRST_NAME_ZIPF_EXPONENT = 0.9
"""Faker's en_GB first names are ranked by ONS frequency without counts; rank r gets weight
r ** -FIRST_NAME_ZIPF_EXPONENT, an estimate of how quickly name frequencies fall with rank."""

COHORT_DECADES = tuple(range(1930, 2010, 10))
"""Birth decades of the shipped top-ten first-name lists."""

COHORT_RANK_WEIGHTS = np.arange(10, 0, -1, dtype=np.float64) / 55.0
"""Weights of the ten names of a birth decade, most popular first."""

_FORBIDDEN = ("\t", "\n", "\r", "\\")
"""Characters that COPY's text format would need escaped; the tables must not contain them."""


def data_path(name: str) -> Path:
    """Return the path of a shipped data file."""
    return Path(str(resources.files("willow_core.population").joinpath("data", name)))


def fingerprint(path: Path) -> str:
    """Return the SHA-256 of a file, so a run can tell when a worker's table differs."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ascii_lower(name: str) -> str:
    """Return `name` folded to lower-case ASCII letters and digits, fit for an email address."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _objects(values: list[str | None]) -> ObjectArray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _probabilities(weights: list[float], what: str) -> FloatArray:
    array = np.asarray(weights, dtype=np.float64)
    total = float(array.sum())
    if total <= 0 or (array < 0).any():
        raise ConfigError(f"{what}: weights must be 0 or more with a positive sum")
    probability: FloatArray = array / total
    return probability


def _check_text(value: str, path: Path, line: int) -> str:
    if not value or any(ch in value for ch in _FORBIDDEN):
        raise ConfigError(
            f"{path}: line {line}: {value!r} is empty or contains a tab, newline or backslash"
        )
    return value


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = set(columns) - set(reader.fieldnames or ())
            if missing:
                raise ConfigError(
                    f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                    f"the header must be {','.join(columns)}"
                )
            return [(number, row) for number, row in enumerate(reader, start=2)]
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; check the path in [population]") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from error


def _number(row: dict[str, str], column: str, path: Path, line: int) -> float:
    try:
        value = float(row[column])
    except ValueError:
        raise ConfigError(
            f"{path}: line {line}: {column} {row[column]!r} is not a number"
        ) from None
    if value < 0:
        raise ConfigError(f"{path}: line {line}: {column} {value} must be 0 or more")
    return value


@dataclass(frozen=True)
class Districts:
    """Postcode districts with their population share, town, locality and county."""

    outward: ObjectArray
    town: ObjectArray
    locality: ObjectArray
    """Named locality within the town, or None."""
    county: ObjectArray
    probability: FloatArray
    landline_prefix: ObjectArray
    """Ofcom drama-range landline prefix for the district's town, followed by 3 digits."""


@cache
def load_districts(path: Path) -> Districts:
    """Read a postcode district table.

    Raises:
        ConfigError: the file is missing, malformed, or has an invalid outward code.
    """
    from willow_core.population.contact import landline_prefix_for_town
    from willow_core.quote_form.postcode import postcode_problem

    columns = ("outward_code", "population", "town", "locality", "county")
    outward, town, locality, county, weight = [], [], [], [], []
    for line, row in _read_csv(path, columns):
        code = _check_text(row["outward_code"].strip().upper(), path, line)
        problem = postcode_problem(f"{code} 1AA")
        if problem:
            raise ConfigError(f"{path}: line {line}: outward code {code!r} is invalid: {problem}")
        outward.append(code)
        town.append(_check_text(row["town"].strip(), path, line))
        locality.append(
            _check_text(row["locality"].strip(), path, line) if row["locality"] else None
        )
        county.append(_check_text(row["county"].strip(), path, line))
        weight.append(_number(row, "population", path, line))
    if not outward:
        raise ConfigError(f"{path}: no districts")
    return Districts(
        outward=_objects(list(outward)),
        town=_objects(list(town)),
        locality=_objects(list(locality)),
        county=_objects(list(county)),
        probability=_probabilities(weight, str(path)),
        landline_prefix=_objects([landline_prefix_for_town(name) for name in town]),
    )


@dataclass(frozen=True)
class Choices:
    """Values with the probability of drawing each."""

    values: ObjectArray
    probability: FloatArray


@cache
def load_breeds(path: Path) -> dict[str, Choices]:
    """Read a breed table: breeds and their weights per species.

    Raises:
        ConfigError: the file is missing or malformed.
    """
    return _load_by_species(path, "breed")


@cache
def load_conditions() -> dict[str, Choices]:
    """Read the shipped table of pre-existing conditions per species."""
    return _load_by_species(data_path("conditions.csv"), "condition")


def _load_by_species(path: Path, column: str) -> dict[str, Choices]:
    grouped: dict[str, tuple[list[str], list[float]]] = {}
    for line, row in _read_csv(path, ("species", column, "weight")):
        species = _check_text(row["species"].strip(), path, line)
        values, weights = grouped.setdefault(species, ([], []))
        values.append(_check_text(row[column].strip(), path, line))
        weights.append(_number(row, "weight", path, line))
    return {
        species: Choices(_objects(list(values)), _probabilities(weights, f"{path} {species}"))
        for species, (values, weights) in grouped.items()
    }


@cache
def load_weighted(name: str, column: str) -> Choices:
    """Read a shipped table of values (in `column`) and weights."""
    path = data_path(name)
    values, weights = [], []
    for line, row in _read_csv(path, (column, "weight")):
        values.append(_check_text(row[column].strip(), path, line))
        weights.append(_number(row, "weight", path, line))
    return Choices(_objects(list(values)), _probabilities(weights, str(path)))


@cache
def load_streets() -> Choices:
    """Return street names: every stem with every suffix, weighted by both."""
    path = data_path("streets.csv")
    stems: list[tuple[str, float]] = []
    suffixes: list[tuple[str, float]] = []
    for line, row in _read_csv(path, ("kind", "value", "weight")):
        entry = (_check_text(row["value"].strip(), path, line), _number(row, "weight", path, line))
        (stems if row["kind"] == "stem" else suffixes).append(entry)
    names, weights = [], []
    for stem, stem_weight in stems:
        for suffix, suffix_weight in suffixes:
            if stem != suffix:
                names.append(f"{stem} {suffix}")
                weights.append(stem_weight * suffix_weight)
    return Choices(_objects(list(names)), _probabilities(weights, str(path)))


@dataclass(frozen=True)
class Names:
    """First names and surnames as tables with their lower-case ASCII forms, plus draw weights.

    First names are drawn as indices into `first` (overall, per sex) or from `cohort` (the most
    popular names of each birth decade, per sex); both index `first_names`.
    """

    first_names: ObjectArray
    first_ascii: ObjectArray
    """Lower-case ASCII form of each first name, for email addresses."""
    first: dict[str, tuple[IntArray, FloatArray]]
    """Per sex: indices into `first_names` and the probability of each."""
    cohort: dict[str, IntArray]
    """Per sex: a (decades, 10) array of indices into `first_names`, most popular first."""
    surnames: ObjectArray
    surname_ascii: ObjectArray
    surname_probability: FloatArray


@cache
def load_names() -> Names:
    """Read first names and surnames (Faker en_GB) and the shipped first names by decade."""
    path = data_path("names_by_decade.csv")
    by_sex: dict[str, dict[int, list[str]]] = {"female": {}, "male": {}}
    for line, row in _read_csv(path, ("decade", "sex", "names")):
        names = row["names"].split()
        if len(names) != 10:
            raise ConfigError(f"{path}: line {line}: needs 10 names, found {len(names)}")
        by_sex[row["sex"]][int(row["decade"])] = names

    ranked = {
        "female": list(dict.fromkeys(EnGbPeople.first_names_female)),
        "male": list(dict.fromkeys(EnGbPeople.first_names_male)),
    }
    every = [*ranked["female"], *ranked["male"]]
    every += [name for decades in by_sex.values() for names in decades.values() for name in names]
    first_names = list(dict.fromkeys(every))
    for name in first_names:
        _check_text(name, path, 0)
    position = {name: i for i, name in enumerate(first_names)}

    first: dict[str, tuple[IntArray, FloatArray]] = {}
    cohort: dict[str, IntArray] = {}
    for sex, names in ranked.items():
        ranks = np.arange(1, len(names) + 1, dtype=np.float64)
        first[sex] = (
            np.array([position[name] for name in names], dtype=np.int64),
            _probabilities(list(ranks**-FIRST_NAME_ZIPF_EXPONENT), f"first names ({sex})"),
        )
        cohort[sex] = np.array(
            [[position[name] for name in by_sex[sex][decade]] for decade in COHORT_DECADES],
            dtype=np.int64,
        )

    surnames = list(EnGbPeople.last_names.keys())
    for name in surnames:
        _check_text(name, path, 0)
    return Names(
        first_names=_objects(list(first_names)),
        first_ascii=_objects([ascii_lower(name) for name in first_names]),
        first=first,
        cohort=cohort,
        surnames=_objects(list(surnames)),
        surname_ascii=_objects([ascii_lower(name) for name in surnames]),
        surname_probability=_probabilities(
            [float(w) for w in EnGbPeople.last_names.values()], "surnames"
        ),
    )
