"""Fixtures for the graph and journey tests: one real embedded ArcadeDB Bolt server per session,
a fresh graph database per test, and a generated population cloned per test."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from willow_core.config import Settings, parse_settings
from willow_core.graph.client import GRAPH_PASSWORD_ENV, GraphClient
from willow_core.graph.embedded import ROOT_USER, EmbeddedGraphServer
from willow_core.population.generator import GENERATOR_NAME
from willow_core.population.worker import run_worker
from willow_core.store.migrations import migrate
from willow_core.store.runs import create_run

POPULATION_CUSTOMERS = 3_000
"""Customers in the test population: enough to sample 1,000 NPCs without taking them all."""


@pytest.fixture(scope="session")
def graph_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedGraphServer]:
    """Start one embedded ArcadeDB server for the session and stop it by its PID afterwards."""
    server = EmbeddedGraphServer(tmp_path_factory.mktemp("arcadedb"), heap_mb=1024)
    server.ensure_started()
    yield server
    server.stop()


@pytest.fixture
def graph_database(graph_server: EmbeddedGraphServer) -> Iterator[str]:
    """Create an empty graph database for one test; drop it afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    graph_server.create_database(name)
    yield name
    graph_server.drop_database(name)


@pytest.fixture(scope="session")
def population_template(postgres_cluster: str) -> str:
    """Generate the test population once, with the real worker, into a template database."""
    name = f"population_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_cluster, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(postgres_cluster, dbname=name)

    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)
        run = create_run(
            conn, total=POPULATION_CUSTOMERS, batch_size=500, seed=11, generator=GENERATOR_NAME
        )
    assert run_worker(dsn, run.run_id) == "finished"
    return name


@pytest.fixture
def population_dsn(postgres_cluster: str, population_template: str) -> Iterator[str]:
    """A private copy of the generated population for one test; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_cluster, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(population_template)
            )
        )
    yield psycopg.conninfo.make_conninfo(postgres_cluster, dbname=name)
    with psycopg.connect(postgres_cluster, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def graph_settings(
    population_dsn: str,
    graph_server: EmbeddedGraphServer,
    graph_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """Settings on this test's population copy and graph database, as a configured server."""
    info = graph_server.running()
    assert info is not None, "the session's graph server has stopped"
    monkeypatch.setenv(GRAPH_PASSWORD_ENV, graph_server.password())
    return parse_settings(
        {
            "postgres": {"dsn": population_dsn, "connect_timeout": 5},
            "graph": {
                "uri": info.uri,
                "user": ROOT_USER,
                "database": graph_database,
                "connect_timeout": 5,
            },
            "journey": {"npcs": 200, "seed": 3, "batch_size": 250},
        }
    )


@pytest.fixture
def graph_client(graph_settings: Settings) -> Iterator[GraphClient]:
    """A client of this test's graph database, closed after the test."""
    client = GraphClient(graph_settings)
    yield client
    client.close()


@pytest.fixture
def embedded_cleanup(isolated_environment: Path) -> Iterator[EmbeddedGraphServer]:
    """The default embedded server of this test's data directory; stopped after the test if a
    test started it."""
    server = EmbeddedGraphServer(isolated_environment / "data" / "arcadedb")
    yield server
    server.stop()
