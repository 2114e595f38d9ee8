"""Connections to the population database."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg.conninfo

from willow_core.config import Settings, redact_dsn
from willow_core.errors import StoreError

log = logging.getLogger("willow.store.db")


def resolve_dsn(settings: Settings) -> str:
    """Return the DSN to use: the configured server, or the embedded cluster started on demand."""
    configured = settings.postgres_dsn()
    if configured:
        return configured

    from willow_core.store.embedded import start_embedded_postgres

    return start_embedded_postgres()


def describe_server(dsn: str) -> str:
    """Return a short, password-free label of the server `dsn` points at, for screens and logs."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return redact_dsn(dsn)
    host = str(params.get("host") or "localhost")
    database = params.get("dbname") or params.get("user") or ""
    if host.startswith("/"):
        return f"{database} on a local socket"
    port = params.get("port") or 5432
    return f"{host}:{port}/{database}"


def connect(dsn: str, *, timeout: int = 10, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection, wrapping failures in a StoreError that names the server and timeout.

    Raises:
        StoreError: the server is unreachable, rejects the login or does not answer in time.
    """
    try:
        return psycopg.connect(
            dsn,
            connect_timeout=timeout,
            autocommit=autocommit,
            application_name="willow",
        )
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreError(
            f"could not connect to PostgreSQL at {describe_server(dsn)} within {timeout} s: "
            f"{reason}; check [postgres] dsn and that the server is running"
        ) from error


@contextmanager
def wrap_errors(operation: str) -> Iterator[None]:
    """Turn a psycopg error raised inside the block into a StoreError naming `operation`."""
    try:
        yield
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreError(f"{operation} failed: {reason}") from error
