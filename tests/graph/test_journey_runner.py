"""Journey runs against a real PostgreSQL population and the real embedded Bolt server."""

import math
import os
import uuid

import psycopg
import pytest

from willow_core.cli import main
from willow_core.config import Settings, parse_settings
from willow_core.errors import JourneyError
from willow_core.graph.client import GRAPH_PASSWORD_ENV, GraphClient
from willow_core.graph.embedded import EmbeddedGraphServer
from willow_core.graph.schema import read_counts
from willow_core.journey import sampling
from willow_core.journey.runner import Funnel, JourneyProgress, JourneyRunner
from willow_core.journey.view import read_npc_journey
from willow_core.population.models import MAX_PETS_PER_CUSTOMER

NEO4J_URI_ENV = "WILLOW_TEST_NEO4J_URI"


def _runner(settings: Settings, graph: GraphClient) -> JourneyRunner:
    dsn = settings.postgres_dsn()
    assert dsn is not None
    return JourneyRunner(dsn, graph, settings.journey, connect_timeout=5)


def _within_sampling_error(observed: int, trials: int, rate: float) -> bool:
    """Whether observed/trials is within four standard errors of `rate`."""
    error = math.sqrt(rate * (1 - rate) / trials)
    return abs(observed / trials - rate) <= 4 * error


def test_thousand_npcs_match_graph_and_rerun(
    graph_settings: Settings, graph_client: GraphClient
) -> None:
    runner = _runner(graph_settings, graph_client)
    progress: list[JourneyProgress] = []

    report = runner.run(1_000, seed=21, on_progress=progress.append)

    funnel = report.funnel
    assert report.complete
    assert report.errors == ()
    assert funnel.npcs == 1_000
    assert [p.processed for p in progress] == [250, 500, 750, 1_000]
    with psycopg.connect(graph_settings.postgres_dsn() or "") as conn:
        checks = conn.execute("SELECT check_name, passed FROM milestone_checks").fetchall()
    assert checks == [("claim_journey", True)]
    counts = read_counts(graph_client)
    assert counts.nodes == {
        "Customer": funnel.npcs,
        "Pet": funnel.npcs,
        "Quote": funnel.quotes,
        "Policy": funnel.policies,
        "Claim": funnel.claims,
        "TestCustomer": funnel.npcs,
    }
    assert counts.relationships == {
        "OWNS": funnel.npcs,
        "REQUESTED": funnel.quotes,
        "FOR_PET": funnel.quotes + funnel.claims,
        "BECAME": funnel.policies,
        "COVERED_BY": funnel.policies,
        "HAS_CLAIM": funnel.claims,
        "TRACKS": funnel.npcs,
    }
    assert counts.customers_with_policies == funnel.policies
    assert Funnel.from_counts(counts).claim_states == funnel.claim_states
    assert report.nodes_created == counts.total_nodes

    assert funnel.quotes >= 990, "nearly every NPC's pet is old enough to insure"
    assert _within_sampling_error(funnel.policies, funnel.quotes, 0.30)
    assert _within_sampling_error(funnel.claims, funnel.policies, 0.10)

    again = runner.run(1_000, seed=21)

    assert again.nodes_created == 0
    assert again.funnel == funnel
    assert read_counts(graph_client).nodes == counts.nodes
    assert read_counts(graph_client).relationships == counts.relationships


def test_new_pets_written_back_once(graph_settings: Settings, graph_client: GraphClient) -> None:
    runner = _runner(graph_settings, graph_client)
    dsn = graph_settings.postgres_dsn()
    assert dsn is not None
    with psycopg.connect(dsn) as conn:
        pets_before = conn.execute("SELECT count(*) FROM pets").fetchone()

    report = runner.run(300, seed=4)
    runner.run(300, seed=4)

    with psycopg.connect(dsn) as conn:
        pets_after = conn.execute("SELECT count(*) FROM pets").fetchone()
        journey_pets = conn.execute(
            "SELECT count(*) FROM journey_pets jp JOIN pets p USING (pet_id) "
            "WHERE jp.journey_seed = 4 AND p.customer_id = jp.customer_id"
        ).fetchone()
    assert pets_before is not None
    assert pets_after is not None
    assert journey_pets is not None
    assert report.funnel.new_pets > 150, "most NPCs own no pet, so most get a new one"
    assert journey_pets[0] == report.funnel.new_pets
    assert pets_after[0] - pets_before[0] == report.funnel.new_pets


def test_npc_at_pet_limit_is_error_not_stop(graph_settings: Settings) -> None:
    settings = graph_settings.model_copy(
        update={"journey": graph_settings.journey.model_copy(update={"new_pet_rate": 1.0})}
    )
    dsn = settings.postgres_dsn()
    assert dsn is not None
    with psycopg.connect(dsn) as conn:
        full = sampling.sample_customer_ids(conn, 6, 50)[0]
        for index in range(MAX_PETS_PER_CUSTOMER):
            conn.execute(
                "INSERT INTO pets VALUES (%s, %s, 'Pip', 'cat', 'Siamese', 'female', "
                "'2020-01-01', false, null, true) ON CONFLICT (pet_id) DO NOTHING",
                (full * MAX_PETS_PER_CUSTOMER + index, full),
            )
    graph = GraphClient(settings)

    report = _runner(settings, graph).run(50, seed=6)
    graph.close()

    assert report.complete
    assert report.funnel.npcs == 49
    assert len(report.errors) == 1
    assert report.errors[0].population_ids == (full,)
    assert f"customer {full} already has 8 pets" in report.errors[0].message


def test_too_few_customers_is_clear_error(
    graph_settings: Settings, graph_client: GraphClient
) -> None:
    with pytest.raises(JourneyError, match="needs 5,000 customers but 3,000 are committed"):
        _runner(graph_settings, graph_client).run(5_000, seed=1)


def test_npc_journey_view(graph_settings: Settings, graph_client: GraphClient) -> None:
    settings = graph_settings.model_copy(
        update={
            "journey": graph_settings.journey.model_copy(
                update={"policy_rate": 1.0, "claim_rate": 1.0}
            )
        }
    )
    _runner(settings, graph_client).run(20, seed=2)
    dsn = settings.postgres_dsn()
    assert dsn is not None
    with psycopg.connect(dsn) as conn:
        sampled = sampling.sample_customer_ids(conn, 2, 20)
        outsider = next(i for i in range(3_000) if i not in sampled)

    view = read_npc_journey(graph_client, sampled[0])
    absent = read_npc_journey(graph_client, outsider)

    assert view.in_graph
    assert view.tracking is not None
    assert view.tracking["quote_generated"] is True
    assert view.tracking["tested_at"].tzinfo is not None
    assert len(view.quotes) == 1
    journey = view.quotes[0]
    assert journey.quote["quote_id"] == f"Q-2-{sampled[0]}"
    assert journey.policy is not None
    assert journey.policy["policy_id"] == f"P-2-{sampled[0]}"
    assert len(journey.claims) == 1
    assert journey.claims[0]["status"] in {"submitted", "assessed", "approved", "declined", "paid"}
    assert not absent.in_graph
    assert absent.quotes == ()


def test_server_stopped_mid_run_then_rerun_completes(
    population_dsn: str, embedded_cleanup: EmbeddedGraphServer
) -> None:
    settings = parse_settings(
        {
            "postgres": {"dsn": population_dsn, "connect_timeout": 5},
            "graph": {"connect_timeout": 1, "embedded_heap_mb": 512},
            "journey": {"batch_size": 100},
        }
    )
    graph = GraphClient(settings)
    runner = _runner(settings, graph)
    first_pid: list[int] = []

    def stop_after_two_batches(progress: JourneyProgress) -> None:
        if progress.processed == 200:
            info = embedded_cleanup.running()
            assert info is not None
            first_pid.append(info.pid)
            assert embedded_cleanup.stop()

    broken = runner.run(500, seed=13, on_progress=stop_after_two_batches)

    assert not broken.complete
    assert broken.stopped is not None
    assert "could not reach the graph server" in broken.stopped
    assert broken.funnel.npcs == 200
    assert len(broken.errors[-1].population_ids) == 100

    finished = runner.run(500, seed=13)
    counts = read_counts(graph)
    restarted = embedded_cleanup.running()
    graph.close()

    assert finished.complete
    assert finished.errors == ()
    assert finished.nodes_created > 0
    assert restarted is not None
    assert restarted.pid != first_pid[0]
    assert counts.nodes["TestCustomer"] == 500
    assert counts.nodes["Quote"] == finished.funnel.quotes
    assert counts.nodes["Policy"] == finished.funnel.policies
    assert counts.nodes["Claim"] == finished.funnel.claims
    assert embedded_cleanup.running() is None, "the client did not stop the server it started"


def test_cli_journey_prints_funnel(
    graph_settings: Settings, tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]
) -> None:
    graph = graph_settings.graph
    config = os.path.join(tmp_path, "config.toml")
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(
            f'[postgres]\ndsn = "{graph_settings.postgres_dsn()}"\n'
            f'[graph]\nuri = "{graph.uri}"\nuser = "{graph.user}"\ndatabase = "{graph.database}"\n'
            "[journey]\nbatch_size = 100\n"
        )

    assert main(["--config", config, "journey", "--n", "150", "--seed", "12"]) == 0

    out = capsys.readouterr().out
    assert "150 journeys written" in out
    assert "of quotes" in out
    assert "0 new nodes" not in out
    assert main(["--config", config, "journey", "--n", "150", "--seed", "12"]) == 0
    assert "0 new nodes" in capsys.readouterr().out


@pytest.mark.skipif(not os.environ.get(NEO4J_URI_ENV), reason=f"{NEO4J_URI_ENV} is not set")
def test_journey_on_real_neo4j(population_dsn: str) -> None:
    uri = os.environ[NEO4J_URI_ENV]
    assert os.environ.get(GRAPH_PASSWORD_ENV), f"set {GRAPH_PASSWORD_ENV} for {uri}"
    settings = parse_settings(
        {
            "postgres": {"dsn": population_dsn},
            "graph": {"uri": uri, "user": os.environ.get("WILLOW_TEST_NEO4J_USER", "neo4j")},
        }
    )
    graph = GraphClient(settings)
    seed = uuid.uuid4().int % 2**31
    runner = _runner(settings, graph)

    report = runner.run(100, seed=seed)
    again = runner.run(100, seed=seed)
    graph.close()

    assert report.complete
    assert report.funnel.npcs == 100
    assert again.nodes_created == 0
