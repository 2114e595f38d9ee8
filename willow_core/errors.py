"""Exceptions raised by the Willow core.

Every error the core raises on purpose derives from `WillowError`, which carries a short title for
a toast or modal heading and a one-line message that names the value and the fix::

    WillowError
    ├── ConfigError          invalid config file, key or value
    ├── StoreError           PostgreSQL unreachable, query or migration failed
    ├── RunStateError        an operation that the run's current state does not allow
    ├── HostError            the generator host could not start, stop or read a worker
    ├── GraphError           graph server unreachable, rejected a query, or could not start
    │   └── GraphUnavailable the graph server cannot be reached; a retry may succeed
    └── JourneyError         a journey run cannot start, e.g. too few customers to sample

Driver errors (psycopg, asyncssh, neo4j) are wrapped where they enter the core and chained with
`raise ... from error`, so the original stays in tracebacks and logs.
"""


class WillowError(Exception):
    """Base class of the core's errors."""

    title = "Willow error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(WillowError):
    title = "Invalid configuration"


class StoreError(WillowError):
    title = "Database error"


class RunStateError(WillowError):
    title = "Run state"


class HostError(WillowError):
    title = "Generator host"


class GraphError(WillowError):
    title = "Graph database"


class GraphUnavailable(GraphError):
    title = "Graph database unreachable"


class JourneyError(WillowError):
    title = "Customer journey"
