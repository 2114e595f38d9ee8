"""Settings from a TOML file, validated by pydantic.

The file is found in this order: the `--config` option, `$WILLOW_CONFIG`, `./config.toml`, then
`config.toml` in the per-user config directory. With no file at all every setting takes its
default, which runs everything on embedded local servers.

Secrets never come from the file: a PostgreSQL password belongs in `PGPASSWORD` or `~/.pgpass`
(libpq reads both), and a DSN that carries one is rejected. `WILLOW_POSTGRES_DSN` overrides
`[postgres] dsn` and may carry a password, because it lives in the environment.
"""

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import psycopg.conninfo
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from willow_core.errors import ConfigError
from willow_core.paths import config_dir

DSN_ENV = "WILLOW_POSTGRES_DSN"
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

    workers: Annotated[int, Field(gt=0, le=256)] = 1
    """Worker processes a run starts with."""


class TuiSettings(_Section):
    refresh_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Seconds between refreshes of the population pane."""

    log_lines: Annotated[int, Field(gt=0, le=1_000)] = 12
    """Lines of the generator's log shown in the population pane."""


class Settings(_Section):
    postgres: PostgresSettings = PostgresSettings()
    generation: GenerationSettings = GenerationSettings()
    tui: TuiSettings = TuiSettings()

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
