"""The connection to the Pet Claims graph through the official `neo4j` driver.

One code path serves AuraDB (`neo4j+s://`), a self-hosted Neo4j 5 and the embedded ArcadeDB
server: the same driver, the same parameterised Cypher. With `[graph] uri` unset, the client starts
the embedded server on first use (or reuses one that another Willow process started) and stops it
on `close` only if this client started it.

Writes go through managed transactions (`Session.execute_write`), which the driver retries on
transient errors for up to `[graph] connect_timeout` seconds. Driver errors are wrapped into
`GraphError`, or `GraphUnavailable` when the server cannot be reached; after that the next call
reconnects, and restarts the embedded server if it has gone.
"""

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, LiteralString, TypeVar

import neo4j
import neo4j.exceptions

from willow_core import __version__
from willow_core.config import Settings
from willow_core.errors import ConfigError, GraphError, GraphUnavailable
from willow_core.graph.embedded import DEFAULT_DATABASE, ROOT_USER, EmbeddedGraphServer

log = logging.getLogger("willow.graph.client")

GRAPH_PASSWORD_ENV = "WILLOW_GRAPH_PASSWORD"  # noqa: S105 - a variable name, not a password

T = TypeVar("T")

_UNREACHABLE_ERRORS = (
    neo4j.exceptions.ServiceUnavailable,
    neo4j.exceptions.SessionExpired,
    neo4j.exceptions.ConnectionAcquisitionTimeoutError,
    # The connection broke during COMMIT, so the outcome is unknown. Writes are MERGEs, so
    # running the same work again is safe.
    neo4j.exceptions.IncompleteCommit,
    OSError,
)


@dataclass(frozen=True)
class GraphTarget:
    """Connection target: URI, user, password and database."""

    uri: str
    user: str
    password: str = field(repr=False)
    database: str | None
    embedded: bool

    @property
    def label(self) -> str:
        """The address for screens and logs; URIs never carry credentials here."""
        return f"{self.uri} (embedded ArcadeDB)" if self.embedded else self.uri


class GraphClient:
    """A lazily opened, thread-safe connection to the Pet Claims graph.

    Args:
        settings: `[graph]` decides the server; with no `uri` the embedded server is used.
        embedded: the embedded server to use when `uri` is unset; by default the one under the
            user data directory.
    """

    def __init__(self, settings: Settings, embedded: EmbeddedGraphServer | None = None) -> None:
        self.settings = settings
        graph = settings.graph
        self._embedded = None
        if graph.uri is None:
            self._embedded = embedded or EmbeddedGraphServer(heap_mb=graph.embedded_heap_mb)
        self._target: GraphTarget | None = None
        self._driver: neo4j.Driver | None = None
        self._started_embedded = False
        self._lock = threading.RLock()

    @property
    def embedded(self) -> EmbeddedGraphServer | None:
        """The embedded server this client uses, or None when `[graph] uri` is set."""
        return self._embedded

    @property
    def address(self) -> str:
        """Where the graph is, without credentials; known before connecting."""
        with self._lock:
            if self._target is not None:
                return self._target.label
        if self._embedded is None:
            return str(self.settings.graph.uri)
        return "embedded ArcadeDB"

    @property
    def started_embedded_server(self) -> bool:
        """Whether this client started the embedded server (and so stops it on close)."""
        return self._started_embedded

    def needs_start(self) -> bool:
        """Return whether connecting would first start the embedded server, a JVM start of a
        few seconds."""
        with self._lock:
            if self._embedded is None or self._target is not None:
                return False
        return self._embedded.running() is None

    def target(self) -> GraphTarget:
        """Return the connection target, starting the embedded server when needed.

        Raises:
            ConfigError: `[graph] uri` is set but `$WILLOW_GRAPH_PASSWORD` is not.
            GraphError: the embedded server could not start.
        """
        with self._lock:
            if self._target is None:
                self._target = self._resolve_target()
            return self._target

    def _resolve_target(self) -> GraphTarget:
        graph = self.settings.graph
        if self._embedded is None:
            assert graph.uri is not None
            password = os.environ.get(GRAPH_PASSWORD_ENV)
            if not password:
                raise ConfigError(
                    f"[graph] uri is {graph.uri} but ${GRAPH_PASSWORD_ENV} is not set; export "
                    f"the password of graph user {graph.user!r} in it"
                )
            return GraphTarget(graph.uri, graph.user, password, graph.database, embedded=False)

        info, started = self._embedded.ensure_started()
        self._started_embedded = self._started_embedded or started
        database = graph.database or DEFAULT_DATABASE
        if graph.database:
            self._embedded.create_database(database)
        return GraphTarget(info.uri, ROOT_USER, self._embedded.password(), database, embedded=True)

    def driver(self) -> neo4j.Driver:
        """Return the driver, creating it on first use.

        Raises:
            ConfigError, GraphError: see `target`.
        """
        with self._lock:
            if self._driver is None:
                target = self.target()
                timeout = self.settings.graph.connect_timeout
                self._driver = neo4j.GraphDatabase.driver(
                    target.uri,
                    auth=(target.user, target.password),
                    connection_timeout=timeout,
                    connection_acquisition_timeout=timeout,
                    max_transaction_retry_time=timeout,
                    user_agent=f"willow/{__version__}",
                )
                log.info("graph driver opened for %s as %s", target.label, target.user)
            return self._driver

    @contextmanager
    def _session(self, operation: str) -> Iterator[neo4j.Session]:
        with self._errors(operation):
            driver = self.driver()
            with driver.session(database=self.target().database) as session:
                yield session

    def read(
        self,
        query: LiteralString,
        parameters: dict[str, Any] | None = None,
        *,
        operation: str = "reading the graph",
    ) -> list[dict[str, Any]]:
        """Run a read query in an auto-commit transaction; return its records as dicts.

        Reads are not retried: they fail at once when the server is down, so a pane shows the
        error and its next refresh is the retry.

        Raises:
            GraphUnavailable: the server cannot be reached.
            GraphError: the server rejected the query or the login.
        """
        with self._session(operation) as session:
            result = session.run(query, parameters or {})
            return [record.data() for record in result]

    def write(
        self,
        work: Callable[[neo4j.ManagedTransaction], T],
        *,
        operation: str = "writing to the graph",
    ) -> T:
        """Run `work` in one managed write transaction; the driver retries transient failures.

        `work` may be called more than once, so it must only run Cypher on the transaction.

        Raises:
            GraphUnavailable: the server cannot be reached.
            GraphError: the server rejected a statement or the login.
        """
        with self._session(operation) as session:
            return session.execute_write(work)

    def run_schema_statement(self, statement: LiteralString) -> neo4j.SummaryCounters:
        """Run one schema statement in its own auto-commit transaction; return its counters.

        Neo4j does not allow schema changes in a transaction that also writes data, so schema
        statements never go through `write`.
        """
        with self._session("applying the graph schema") as session:
            result = session.run(statement)
            return result.consume().counters

    def verify(self) -> str:
        """Check that the server responds and return its agent string (product and version).

        Raises:
            GraphUnavailable, GraphError: as for `read`.
        """
        with self._errors("connecting to the graph"):
            driver = self.driver()
            info = driver.get_server_info()
            return str(info.agent)

    def close(self) -> None:
        """Close the driver, and stop the embedded server if this client started it."""
        with self._lock:
            self._close_driver()
            if self._embedded is not None and self._started_embedded:
                self._embedded.stop()
                self._started_embedded = False
            self._target = None

    def _close_driver(self) -> None:
        if self._driver is not None:
            try:
                self._driver.close()
            except Exception as error:  # closing a broken pool can raise anything; it is gone
                log.debug("closing the graph driver failed: %s", error)
            self._driver = None

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        try:
            yield
        except neo4j.exceptions.AuthError as error:
            target = self._target
            user = target.user if target else self.settings.graph.user
            raise GraphError(
                f"{operation} failed: {self.address} rejected the login of user {user!r}; "
                f"check ${GRAPH_PASSWORD_ENV} and [graph] user"
            ) from error
        except _UNREACHABLE_ERRORS as error:
            address = self.address
            self._forget_connection()
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            raise GraphUnavailable(
                f"{operation} failed: could not reach the graph server at {address} within "
                f"{self.settings.graph.connect_timeout:g} s ({reason}); check that it is running"
            ) from error
        except neo4j.exceptions.Neo4jError as error:
            detail = error.message or error.code or type(error).__name__
            raise GraphError(f"{operation} failed: {detail}") from error
        except neo4j.exceptions.DriverError as error:
            raise GraphError(f"{operation} failed: {error}") from error

    def _forget_connection(self) -> None:
        """Drop the driver and, for the embedded server, the target, so the next call
        reconnects and restarts the server if it has stopped."""
        with self._lock:
            self._close_driver()
            if self._embedded is not None:
                self._target = None
