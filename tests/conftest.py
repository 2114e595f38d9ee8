"""Fixtures that start real servers on this machine and keep tests away from the user's own data."""

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from willow_core.config import Settings, parse_settings
from willow_core.control import ControlRoom


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point data and config lookups at a temporary directory and clear Willow's variables."""
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "config").mkdir()
    monkeypatch.setenv("WILLOW_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("WILLOW_CONFIG_DIR", str(home / "config"))
    for name in ("WILLOW_CONFIG", "WILLOW_POSTGRES_DSN", "WILLOW_GRAPH_PASSWORD", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(home)
    return home


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start one real PostgreSQL cluster (from pgserver) for the session; yield its admin DSN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield str(server.get_uri("postgres"))
    server.cleanup()


@pytest.fixture
def postgres_dsn(postgres_cluster: str) -> Iterator[str]:
    """Create a fresh, empty database for one test; yield its DSN and drop it afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_cluster, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(postgres_cluster, dbname=name)
    yield dsn
    with psycopg.connect(postgres_cluster, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def settings(postgres_dsn: str) -> Settings:
    """Settings that point at this test's database and use small, quick runs."""
    return parse_settings(
        {
            "postgres": {"dsn": postgres_dsn, "connect_timeout": 5},
            "generation": {"total": 2_000, "batch_size": 200, "seed": 7, "workers": 1},
        }
    )


@pytest.fixture
def control_room(settings: Settings) -> Iterator[ControlRoom]:
    """A ControlRoom on this test's database, closed after the test."""

    room = ControlRoom(settings)
    yield room
    room.close()


@pytest.fixture
def make_database(postgres_cluster: str) -> Iterator[Callable[[], str]]:
    """Return a factory of extra fresh databases (for comparing two runs); drops them afterwards."""
    created: list[str] = []

    def create() -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_cluster, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return psycopg.conninfo.make_conninfo(postgres_cluster, dbname=name)

    yield create
    with psycopg.connect(postgres_cluster, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
