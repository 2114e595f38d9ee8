"""The embedded PostgreSQL cluster used when `[postgres] dsn` is not set.

The `pgserver` package ships PostgreSQL binaries and runs a private cluster in a directory of our
choice, reached over a Unix socket inside that directory. The server is left running when Python
exits, so detached generator workers keep writing after the TUI quits and a restarted TUI reuses
the same data.
"""

import logging
import os
import signal
import time
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from willow_core.errors import StoreError
from willow_core.paths import data_dir

log = logging.getLogger("willow.store.embedded")

EMBEDDED_DATABASE = "willow"


def embedded_cluster_dir() -> Path:
    """Return the data directory of the embedded cluster."""
    return data_dir() / "postgres"


def start_embedded_postgres(cluster_dir: Path | None = None) -> str:
    """Start (or reuse) the embedded cluster and return a DSN for Willow's database in it.

    Raises:
        StoreError: the cluster could not be initialised or started.
    """
    directory = cluster_dir or embedded_cluster_dir()
    directory.parent.mkdir(parents=True, exist_ok=True)

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, which is normal over SSH and in CI.
        warnings.simplefilter("ignore")
        try:
            from pgserver.postgres_server import get_server
        except ImportError as error:
            raise StoreError(
                "the embedded PostgreSQL needs the pgserver package, which a generator host's "
                'install leaves out; install "willow[control]" or set [postgres] dsn'
            ) from error

        try:
            server = get_server(directory, cleanup_mode=None)
            # pgserver keeps one handle per directory and checks the server only when it creates
            # that handle, so a server that stopped since then is started again here, under the
            # same inter-process lock that pgserver takes.
            with server._lock:
                server.ensure_postgres_running()
        except Exception as error:  # pgserver raises bare exceptions from its subprocess calls
            raise StoreError(
                f"could not start the embedded PostgreSQL in {directory}: {error}; "
                f"see {directory / 'log'} or set [postgres] dsn to use another server"
            ) from error

        maintenance_dsn: str = server.get_uri("postgres")
        dsn: str = server.get_uri(EMBEDDED_DATABASE)

    _create_database_once(maintenance_dsn, directory)

    log.info("embedded PostgreSQL running in %s", directory)
    return dsn


def _create_database_once(maintenance_dsn: str, directory: Path) -> None:
    try:
        with psycopg.connect(maintenance_dsn, autocommit=True, connect_timeout=10) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if found is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE))
                )
                log.info(
                    "created database %s in the embedded cluster %s", EMBEDDED_DATABASE, directory
                )
    except psycopg.errors.DuplicateDatabase:
        pass  # another process created it between the check and the CREATE
    except psycopg.Error as error:
        raise StoreError(
            f"could not create database {EMBEDDED_DATABASE} in the embedded PostgreSQL "
            f"in {directory}: {error}"
        ) from error


def stop_embedded_postgres(cluster_dir: Path | None = None, timeout: float = 30) -> bool:
    """Stop the embedded cluster by the PID in its postmaster.pid; return whether one was running.

    Raises:
        StoreError: the server did not stop within `timeout` seconds.
    """
    directory = cluster_dir or embedded_cluster_dir()
    pid_file = directory / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return False

    try:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except ProcessLookupError:
        return False

    deadline = time.monotonic() + timeout
    while pid_file.exists():
        if time.monotonic() > deadline:
            raise StoreError(
                f"the embedded PostgreSQL (pid {pid}) did not stop within {timeout:.0f} s"
            )
        time.sleep(0.05)
    log.info("stopped the embedded PostgreSQL in %s", directory)
    return True
