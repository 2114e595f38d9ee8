"""Connecting to the graph: credentials, failures, and the embedded server's life cycle."""

import os
import socket
import stat

import psutil
import pytest

from willow_core.config import parse_settings
from willow_core.errors import ConfigError, GraphError, GraphUnavailable
from willow_core.graph.client import GRAPH_PASSWORD_ENV, GraphClient
from willow_core.graph.embedded import EmbeddedGraphServer


def test_uri_with_password_rejected() -> None:
    with pytest.raises(ConfigError, match="contains a user or password"):
        parse_settings({"graph": {"uri": "neo4j+s://neo4j:secret@example.databases.neo4j.io"}})


def test_uri_with_unknown_scheme_rejected() -> None:
    with pytest.raises(ConfigError, match=r"\[graph\] uri = 'http://localhost:7474'"):
        parse_settings({"graph": {"uri": "http://localhost:7474"}})


def test_configured_uri_needs_password_env() -> None:
    settings = parse_settings({"graph": {"uri": "bolt://127.0.0.1:7687"}})
    client = GraphClient(settings)

    with pytest.raises(ConfigError, match=GRAPH_PASSWORD_ENV):
        client.read("RETURN 1 AS one")


def test_wrong_password_names_the_fix(
    graph_server: EmbeddedGraphServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = graph_server.running()
    assert info is not None
    monkeypatch.setenv(GRAPH_PASSWORD_ENV, "not-the-password")
    client = GraphClient(parse_settings({"graph": {"uri": info.uri, "user": "root"}}))

    with pytest.raises(GraphError, match="rejected the login of user 'root'") as raised:
        client.read("RETURN 1 AS one")
    client.close()

    assert "not-the-password" not in raised.value.message


def test_unreachable_server_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(GRAPH_PASSWORD_ENV, "whatever")
    settings = parse_settings({"graph": {"uri": f"bolt://127.0.0.1:{port}", "connect_timeout": 2}})
    client = GraphClient(settings)

    with pytest.raises(GraphUnavailable, match=f"127.0.0.1:{port}"):
        client.read("RETURN 1 AS one")
    client.close()


def test_session_server_reused_not_restarted(graph_server: EmbeddedGraphServer) -> None:
    running = graph_server.running()
    assert running is not None

    info, started = EmbeddedGraphServer(graph_server.directory).ensure_started()

    assert not started
    assert info.pid == running.pid


def test_password_file_private(graph_server: EmbeddedGraphServer) -> None:
    mode = stat.S_IMODE(os.stat(graph_server.password_file).st_mode)
    assert mode == 0o600
    state_mode = stat.S_IMODE(os.stat(graph_server.state_file).st_mode)
    assert state_mode == 0o600
    password = graph_server.password()
    assert len(password) >= 32
    assert password not in graph_server.log_file.read_text(errors="replace")


def test_embedded_default_starts_and_stops(embedded_cleanup: EmbeddedGraphServer) -> None:
    client = GraphClient(parse_settings({}))

    agent = client.verify()
    info = embedded_cleanup.running()
    assert info is not None
    assert "ArcadeDB" in agent
    assert client.started_embedded_server
    assert client.address == f"{info.uri} (embedded ArcadeDB)"
    listening = {
        connection.laddr.ip
        for connection in psutil.Process(info.pid).net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    }
    assert listening
    assert {ip.removeprefix("::ffff:") for ip in listening} == {"127.0.0.1"}

    other = GraphClient(parse_settings({}))
    assert other.read("RETURN 1 AS one") == [{"one": 1}]
    other.close()
    assert embedded_cleanup.running() is not None, "a client that reused the server stopped it"

    client.close()
    assert embedded_cleanup.running() is None
    assert not psutil.pid_exists(info.pid)
