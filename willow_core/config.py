"""Settings from a TOML file, validated by pydantic.

The file is found in this order: the `--config` option, `$WILLOW_CONFIG`, `./config.toml`, then
`config.toml` in the per-user config directory. With no file at all every setting takes its
default, which runs everything on embedded local servers.

Secrets never come from the file: a PostgreSQL password belongs in `PGPASSWORD` or `~/.pgpass`
(libpq reads both), and a DSN that carries one is rejected. `WILLOW_POSTGRES_DSN` overrides
`[postgres] dsn` and may carry a password, because it lives in the environment.
The graph server's password comes only from `WILLOW_GRAPH_PASSWORD`.
"""

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import psycopg.conninfo
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from willow_core.errors import ConfigError
from willow_core.paths import config_dir

DSN_ENV = "WILLOW_POSTGRES_DSN"

MAX_WORKERS = 256
"""Most worker processes one launch starts on a host."""
CONFIG_ENV = "WILLOW_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresSettings(_Section):
    dsn: str | None = None
    """libpq connection string or URI of the population database, without a password.
    Absent: an embedded PostgreSQL cluster under the user data directory."""

    connect_timeout: Annotated[int, Field(gt=0, le=300)] = 10
    """Seconds to wait for a connection before reporting the server unreachable."""

    @field_validator("dsn")
    @classmethod
    def _reject_password(cls, dsn: str | None) -> str | None:
        if dsn is None:
            return None
        try:
            params = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as error:
            raise ValueError(f"not a valid libpq connection string ({error})") from error
        if params.get("password"):
            raise ValueError(
                "contains a password; remove it and set PGPASSWORD or add it to ~/.pgpass"
            )
        return dsn


class GenerationSettings(_Section):
    total: Annotated[int, Field(gt=0, le=1_000_000_000)] = 100_000
    """Customers a new run generates when no target is given."""

    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 1_000
    """Customers per batch: the unit a worker claims, generates and commits in one transaction."""

    seed: Annotated[int, Field(ge=0, lt=2**63)] = 20_260_101
    """Seed of a new run; batch k's content depends only on (seed, k)."""

    workers: Annotated[int, Field(gt=0, le=MAX_WORKERS)] = 1
    """Worker processes a run starts with."""


class TuiSettings(_Section):
    refresh_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Seconds between refreshes of the population pane."""

    log_lines: Annotated[int, Field(gt=0, le=1_000)] = 12
    """Lines of the generator's log shown in the population pane."""


GRAPH_URI_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


class GraphSettings(_Section):
    uri: str | None = None
    """Bolt URI of the Pet Claims graph: `neo4j+s://` for AuraDB, `bolt://` or `neo4j://` for a
    self-hosted Neo4j 5. The password comes from `$WILLOW_GRAPH_PASSWORD`.
    Absent: an embedded ArcadeDB server under the user data directory, on 127.0.0.1."""

    user: str = "neo4j"
    """User name for `uri`; the embedded server always uses its own `root` user."""

    database: str | None = None
    """Database on the graph server; absent means the server's default database."""

    connect_timeout: Annotated[float, Field(gt=0, le=300)] = 15.0
    """Seconds to wait for the graph server, and to retry a failed write, before giving up."""

    refresh_seconds: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """Seconds between refreshes of the graph pane."""

    embedded_heap_mb: Annotated[int, Field(ge=256, le=65_536)] = 2048
    """Maximum Java heap of the embedded ArcadeDB server, in MiB."""

    @field_validator("uri")
    @classmethod
    def _check_uri(cls, uri: str | None) -> str | None:
        if uri is None:
            return None
        scheme, separator, rest = uri.partition("://")
        if not separator or scheme not in GRAPH_URI_SCHEMES:
            raise ValueError(f"must start with one of {', '.join(GRAPH_URI_SCHEMES)} and ://")
        if "@" in rest.split("/", 1)[0]:
            raise ValueError(
                "contains a user or password; set [graph] user and $WILLOW_GRAPH_PASSWORD instead"
            )
        return uri


class JourneySettings(_Section):
    npcs: Annotated[int, Field(gt=0, le=10_000_000)] = 1_000
    """NPCs a journey run samples when no count is given."""

    seed: Annotated[int, Field(ge=0, lt=2**63)] = 20_260_101
    """Seed of a journey run; each NPC's outcomes depend only on this seed and the NPC."""

    policy_rate: Annotated[float, Field(ge=0, le=1)] = 0.30
    """Share of quotes that become policies."""

    claim_rate: Annotated[float, Field(ge=0, le=1)] = 0.10
    """Share of policies that have a claim."""

    new_pet_rate: Annotated[float, Field(ge=0, le=1)] = 0.10
    """Share of NPCs who already own pets that get a new pet for the quote; NPCs without pets
    always get a new one."""

    batch_size: Annotated[int, Field(gt=0, le=100_000)] = 1_000
    """NPCs written to the graph per transaction."""


class GpuHostSettings(_Section):
    host: str | None = None
    """Host name or address of the generator host, reached over SSH.
    Absent: workers run as detached processes on this machine."""

    port: Annotated[int, Field(gt=0, lt=65_536)] = 22
    """SSH port of the generator host."""

    user: str | None = None
    """SSH user on the generator host; absent means the local user name (or ~/.ssh/config)."""

    key_path: Path | None = None
    """Private key to log in with. Absent: the keys held by ssh-agent, then ~/.ssh/id_*."""

    known_hosts: Path | None = None
    """known_hosts file that must hold the host's key; absent means ~/.ssh/known_hosts."""

    python: str = "python3"
    """Python 3.11+ interpreter on the host that creates the venv, as a name on PATH or a path."""

    venv: str = "~/.local/share/willow/venv"
    """Virtual environment on the host that `willow deploy` installs into and workers run from."""

    remote_dir: str = "~/.local/share/willow"
    """Directory on the host for worker logs and uploaded wheels."""

    workers: Annotated[int, Field(gt=0, le=MAX_WORKERS)] | None = None
    """Worker processes a run starts on the host; absent means [generation] workers."""

    detach: Literal["auto", "tmux", "setsid"] = "auto"
    """Detach mode that lets workers outlive the SSH session: "auto" uses tmux when the host
    has it and setsid otherwise; "tmux" or "setsid" forces one."""

    connect_timeout: Annotated[int, Field(gt=0, le=300)] = 10
    """Seconds to wait for the SSH connection and login."""

    reconnect_max_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0
    """Maximum seconds between reconnection attempts; the wait doubles from 1 s up to this."""

    @field_validator("host", "user")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c.isspace() for c in value)):
            raise ValueError("must be a non-empty name without spaces")
        return value

    @field_validator("key_path", "known_hosts")
    @classmethod
    def _expand_home(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path is not None else None

    @field_validator("python", "venv", "remote_dir")
    @classmethod
    def _check_remote_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if value.startswith("~") and not (value == "~" or value.startswith("~/")):
            raise ValueError("may start with ~/ (the SSH user's home) but not ~user")
        return value


class QuoteFormSettings(_Section):
    path: Path | None = None
    """The team's quote form file (TOML, in the format of the shipped default form); a relative
    path is read from the config file's directory. Absent: the default UK pet-insurance form."""

    sample_size: Annotated[int, Field(gt=0, le=10_000_000)] = 10_000
    """NPCs that `v` in the TUI and `willow coverage` validate when no count is given."""

    chunk_size: Annotated[int, Field(gt=0, le=100_000)] = 5_000
    """NPCs read, validated and written per transaction while validating."""


AGE_BANDS_UK_ADULTS: tuple[tuple[int, float], ...] = (
    (18, 1.5),
    (20, 4.1),
    (25, 4.5),
    (30, 4.6),
    (35, 4.5),
    (40, 4.2),
    (45, 4.2),
    (50, 4.6),
    (55, 4.6),
    (60, 4.1),
    (65, 3.5),
    (70, 3.3),
    (75, 2.6),
    (80, 1.7),
    (85, 1.0),
)
"""UK residents by age band in millions: band start age and size, rounded from the ONS mid-2021
population estimates for the UK (an estimate to 0.1 million, not the published figures)."""


_Age = Annotated[int, Field(ge=16, le=120)]
_Share = Annotated[float, Field(ge=0, le=1)]
_Weight = Annotated[float, Field(ge=0)]


class PopulationSettings(_Section):
    """Targets of the population generator. A run stores the values it was started with, so
    every worker of the run, on any host, generates the same population."""

    female_share: Annotated[float, Field(ge=0, le=1)] = 0.51
    """Share of customers who are female; the rest are male."""

    age_bands: list[tuple[_Age, _Weight]] = Field(default_factory=lambda: list(AGE_BANDS_UK_ADULTS))
    """Customers' ages at their record date: [start age, weight] per band, in ascending order.
    A band runs to the next band's start; the last band runs to `max_age`."""

    max_age: Annotated[int, Field(ge=17, le=120)] = 90
    """Oldest customer age in years: ages never exceed it."""

    cohort_name_share: Annotated[float, Field(ge=0, le=1)] = 0.3
    """Share of first names drawn from the ten most popular names of the customer's birth
    decade instead of from the overall frequency list."""

    mrs_share_by_age: list[tuple[_Age, _Share]] = Field(
        default_factory=lambda: [
            (18, 0.03),
            (25, 0.25),
            (30, 0.45),
            (35, 0.6),
            (45, 0.68),
            (60, 0.75),
            (70, 0.8),
        ]
    )
    """Share of women titled Mrs: [from age, share] steps in ascending order. Women who are
    neither Mrs, Ms nor Dr are titled Miss."""

    ms_share: Annotated[float, Field(ge=0, le=1)] = 0.15
    """Share of women titled Ms."""

    dr_share: Annotated[float, Field(ge=0, le=1)] = 0.012
    """Share of customers aged 27 or over titled Dr."""

    mx_share: Annotated[float, Field(ge=0, le=1)] = 0.003
    """Share of customers titled Mx."""

    email_domains: list[str] = Field(
        default_factory=lambda: ["example.com", "example.org", "example.net"]
    )
    """Domains of customers' email addresses; each must be reserved for documentation or
    testing (RFC 2606, RFC 6761), so no message can reach a real mailbox."""

    mobile_share: Annotated[float, Field(ge=0, le=1)] = 0.7
    """Share of customers whose phone is a mobile (07700 900xxx); the rest get a landline in
    Ofcom's drama range for their city, or 01632 960xxx."""

    flat_share: Annotated[float, Field(ge=0, le=1)] = 0.15
    """Share of addresses that are flats ("Flat 3, 12 High Street")."""

    locality_share: Annotated[float, Field(ge=0, le=1)] = 0.6
    """Share of addresses in districts with a named locality that give it as address line 2."""

    pet_owner_share: Annotated[float, Field(ge=0, le=1)] = 0.30
    """Share of customers who own at least one pet."""

    pets_per_owner: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [0.80, 0.15, 0.05]
    )
    """Weights of owning 1, 2, 3, ... pets; at most 8 entries."""

    species_shares: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"dog": 0.52, "cat": 0.42, "rabbit": 0.06}
    )
    """Share of pets per species; every species needs breeds in the breeds table."""

    pet_mean_age_years: dict[str, Annotated[float, Field(gt=0, le=30)]] = Field(
        default_factory=lambda: {"dog": 5.5, "cat": 6.5, "rabbit": 3.0}
    )
    """Mean age of pets per species in years, before ages above the maximum are redrawn (which
    lowers the measured mean slightly; the distribution report allows for it)."""

    pet_max_age_years: dict[str, Annotated[int, Field(ge=1, le=30)]] = Field(
        default_factory=lambda: {"dog": 17, "cat": 20, "rabbit": 11}
    )
    """Oldest age of pets per species, in years."""

    microchipped_share: Annotated[float, Field(ge=0, le=1)] = 0.70
    """Share of pets with a microchip (15-digit ISO 11784 number)."""

    neutered_shares: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: {"dog": 0.65, "cat": 0.85, "rabbit": 0.45}
    )
    """Share of pets neutered, per species."""

    pre_existing_share: Annotated[float, Field(ge=0, le=1)] = 0.08
    """Share of pets with a pre-existing condition."""

    districts_file: Path | None = None
    """CSV of postcode districts (outward_code, population, town, locality, county) in the
    shipped table's format; a relative path is read from the current directory. Absent: the
    shipped table of Great Britain's districts."""

    breeds_file: Path | None = None
    """CSV of breeds (species, breed, weight) in the shipped table's format; a relative path is
    read from the current directory. Absent: the shipped table of breeds weighted by UK
    popularity."""

    report_sample_size: Annotated[int, Field(gt=0, le=10_000_000)] = 100_000
    """NPCs that `willow report distributions` samples when no count is given."""

    report_share_tolerance: Annotated[float, Field(gt=0, le=1)] = 0.02
    """Largest gap between a measured and a target share before the report flags it."""

    report_mean_tolerance: Annotated[float, Field(gt=0, le=1)] = 0.05
    """Largest relative gap between a measured and a target mean before the report flags it."""

    @field_validator("email_domains")
    @classmethod
    def _check_domains(cls, domains: list[str]) -> list[str]:
        if not domains:
            raise ValueError("needs at least one domain")
        for domain in domains:
            if not is_reserved_domain(domain):
                raise ValueError(
                    f"{domain!r} is not reserved; use example.com, example.org, example.net "
                    "or a name under .example or .test"
                )
        return domains

    @field_validator("pets_per_owner")
    @classmethod
    def _check_pet_counts(cls, weights: list[float]) -> list[float]:
        if not weights or len(weights) > 8 or sum(weights) <= 0:
            raise ValueError("needs 1 to 8 weights with a positive sum")
        return weights

    @field_validator("species_shares")
    @classmethod
    def _check_species(cls, shares: dict[str, float]) -> dict[str, float]:
        if not shares or sum(shares.values()) <= 0:
            raise ValueError("needs at least one species with a positive share")
        return shares

    @field_validator("age_bands", "mrs_share_by_age")
    @classmethod
    def _check_ascending(cls, steps: list[tuple[int, float]]) -> list[tuple[int, float]]:
        starts = [start for start, _ in steps]
        if not steps or starts != sorted(set(starts)):
            raise ValueError("needs [age, value] pairs in strictly ascending age order")
        return steps

    @model_validator(mode="after")
    def _check_max_age(self) -> Self:
        if self.age_bands[-1][0] >= self.max_age:
            raise ValueError(
                f"max_age {self.max_age} must be above the last age band's start "
                f"({self.age_bands[-1][0]})"
            )
        return self


RESERVED_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
"""Second-level domains reserved for documentation by RFC 2606."""

RESERVED_TLDS = ("example", "test", "invalid", "localhost")
"""Top-level domains reserved by RFC 2606 and RFC 6761."""


def is_reserved_domain(domain: str) -> bool:
    """Return whether mail to `domain` can never reach a real mailbox (RFC 2606, RFC 6761)."""
    name = domain.lower().rstrip(".")
    if not name or any(not label for label in name.split(".")):
        return False
    if any(name == base or name.endswith("." + base) for base in RESERVED_EMAIL_DOMAINS):
        return True
    return name.rsplit(".", 1)[-1] in RESERVED_TLDS and "." in name


class Settings(_Section):
    postgres: PostgresSettings = PostgresSettings()
    generation: GenerationSettings = GenerationSettings()
    tui: TuiSettings = TuiSettings()
    graph: GraphSettings = GraphSettings()
    journey: JourneySettings = JourneySettings()
    gpu_host: GpuHostSettings = GpuHostSettings()
    quote_form: QuoteFormSettings = QuoteFormSettings()
    population: PopulationSettings = PopulationSettings()

    source: Path | None = Field(default=None, exclude=True)
    """The file these settings were read from; None when every value is a default."""

    def postgres_dsn(self) -> str | None:
        """Return the configured DSN, `$WILLOW_POSTGRES_DSN` first; None means embedded."""
        return os.environ.get(DSN_ENV) or self.postgres.dsn


def find_config_file(explicit: Path | None = None) -> Path | None:
    """Return the config file to read, or None when there is none.

    Raises:
        ConfigError: a path given by `--config` or `$WILLOW_CONFIG` does not exist.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} (from --config) not found; check the path")
        return explicit

    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"config file {path} (from ${CONFIG_ENV}) not found; check the path")
        return path

    for candidate in (Path("config.toml"), config_dir() / "config.toml"):
        if candidate.is_file():
            return candidate
    return None


def load_settings(explicit: Path | None = None) -> Settings:
    """Find, read and validate the config file.

    Raises:
        ConfigError: the file is not valid TOML, has an unknown key or a bad value; the message
            names the file, the key and the value.
    """
    path = find_config_file(explicit)
    if path is None:
        return Settings()

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from error

    return parse_settings(data, path)


def parse_settings(data: dict[str, Any], path: Path | None = None) -> Settings:
    """Validate already parsed TOML data; `path` only names the source in errors."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe_validation_error(error, data, path)) from error
    return settings.model_copy(update={"source": path})


def _describe_validation_error(
    error: ValidationError, data: dict[str, Any], path: Path | None
) -> str:
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    where = str(path) if path else "settings"

    section, name = location[:-1], location[-1]
    key = f"[{'.'.join(section)}] {name}" if section else name

    if first["type"] == "extra_forbidden":
        detail = "unknown key; see config.toml.example for the valid keys"
        return f"{where}: {key}: {detail}"

    value = _lookup(data, location)
    if value is _MISSING:
        shown = "missing"
    elif location[-1] == "dsn" and isinstance(value, str):
        shown = repr(redact_dsn(value))
    else:
        shown = repr(value)
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {key} = {shown}: {message}{more}"


_MISSING = object()


def redact_dsn(dsn: str) -> str:
    """Return `dsn` with any password replaced by `***`, fit for logs and screens."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    if params.get("password"):
        params["password"] = "***"  # noqa: S105 - the mask shown in place of a password
    return psycopg.conninfo.make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def _lookup(data: Any, location: list[str]) -> Any:
    for part in location:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data
