"""Generation runs against a real PostgreSQL: exact resume after SIGKILL, pause, resume, finish."""

import os
import signal
from pathlib import Path

import psycopg
import pytest

from tests.helpers import population_digest, wait_until
from willow_core.config import Settings, parse_settings
from willow_core.control import ControlRoom
from willow_core.errors import RunStateError, StoreError
from willow_core.paths import logs_dir
from willow_core.population.worker import run_worker
from willow_core.store import runs
from willow_core.store.runs import RunState

# Batches big enough that a worker spends a few tenths of a second on each, so a kill can land
# between its claim and its commit.
TOTAL = 150_000
BATCH_SIZE = 25_000
SEED = 424_242


def _settings(dsn: str, workers: int = 1) -> Settings:
    return parse_settings(
        {
            "postgres": {"dsn": dsn, "connect_timeout": 5},
            "generation": {
                "total": TOTAL,
                "batch_size": BATCH_SIZE,
                "seed": SEED,
                "workers": workers,
            },
        }
    )


def _uninterrupted_digest(dsn: str) -> tuple[int, int, str, str]:
    """Generate the reference population in-process, in one go, with no interruption."""
    room = ControlRoom(_settings(dsn))
    with room.connection() as conn:
        run = runs.create_run(
            conn, total=TOTAL, batch_size=BATCH_SIZE, seed=SEED, generator="reference"
        )
    room.close()
    assert run_worker(dsn, run.run_id) == "finished"
    return population_digest(dsn)


def _last_log_line(path: str) -> str:
    lines = Path(path).read_text(errors="replace").splitlines()
    return lines[-1] if lines else ""


def _committed(dsn: str, run_id: int) -> set[int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT batch_index FROM batches WHERE run_id = %s AND committed_at IS NOT NULL",
            (run_id,),
        ).fetchall()
    return {index for (index,) in rows}


def _kill_workers_mid_batch(room: ControlRoom, dsn: str, run_id: int, after: int) -> int:
    """SIGKILL every live worker while it generates a batch; return how many died mid-batch."""
    wait_until(lambda: len(_committed(dsn, run_id)) >= after, message=f"{after} commits")
    with room.connection() as conn:
        workers = runs.live_workers(conn, run_id)
        logs = dict(
            conn.execute(
                "SELECT worker_id, log_path FROM workers WHERE run_id = %s", (run_id,)
            ).fetchall()
        )
    assert workers, "no live worker to kill"

    killed_mid_batch = 0
    for worker in workers:
        log_path = logs[worker.worker_id]
        wait_until(
            lambda path=log_path: "claimed batch" in _last_log_line(path),
            message="a worker in the middle of a batch",
        )
        claimed = int(_last_log_line(log_path).split("claimed batch ")[1].split()[0])
        os.kill(worker.pid, signal.SIGKILL)
        wait_until(lambda pid=worker.pid: not room.host.is_alive(pid), message="worker death")
        if claimed not in _committed(dsn, run_id):
            killed_mid_batch += 1
    return killed_mid_batch


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_sigkill_is_exact(make_database, workers: int) -> None:
    reference = _uninterrupted_digest(make_database())
    dsn = make_database()
    room = ControlRoom(_settings(dsn, workers=workers))
    try:
        run = room.start_run()
        mid_batch_kills = 0
        for after in (1, 3):
            mid_batch_kills += _kill_workers_mid_batch(room, dsn, run.run_id, after)
            progress = room.progress(run.run_id)
            assert progress is not None
            assert progress.state is RunState.CRASHED
            room.resume(run.run_id)

        wait_until(
            lambda: room.progress(run.run_id).state is RunState.FINISHED,  # type: ignore[union-attr]
            message="the run to finish",
        )
    finally:
        room.close()

    assert mid_batch_kills >= 2, "the workers were not killed in the middle of a batch"
    assert population_digest(dsn) == reference
    with psycopg.connect(dsn) as conn:
        gaps = conn.execute(
            """
            SELECT count(*) FROM generate_series(0, %s - 1) AS id
            WHERE NOT EXISTS (SELECT 1 FROM customers WHERE customer_id = id)
            """,
            (TOTAL,),
        ).fetchone()
    assert gaps == (0,)


def test_pause_stops_at_batch_boundary(settings: Settings, postgres_dsn: str) -> None:
    room = ControlRoom(
        settings.model_copy(
            update={
                "generation": settings.generation.model_copy(
                    update={"total": 400_000, "batch_size": 20_000}
                )
            }
        )
    )
    try:
        run = room.start_run()
        wait_until(lambda: len(_committed(postgres_dsn, run.run_id)) >= 2, message="2 commits")
        room.pause(run.run_id)
        wait_until(
            lambda: room.progress(run.run_id).state is RunState.PAUSED,  # type: ignore[union-attr]
            message="the run to pause",
        )
        paused = room.progress(run.run_id)
        assert paused is not None
        assert paused.customers % 20_000 == 0
        assert paused.customers < 400_000
        assert paused.state is RunState.PAUSED
        with psycopg.connect(postgres_dsn) as conn:
            customers = conn.execute("SELECT count(*) FROM customers").fetchone()
            reasons = conn.execute("SELECT exit_reason FROM workers").fetchall()
        assert customers == (paused.customers,)
        assert reasons == [("paused",)]

        with pytest.raises(RunStateError, match="already paused"):
            room.pause(run.run_id)

        room.resume(run.run_id)
        wait_until(
            lambda: room.progress(run.run_id).state is RunState.FINISHED,  # type: ignore[union-attr]
            message="the run to finish",
        )
        finished = room.progress(run.run_id)
        assert finished is not None
        assert finished.customers == 400_000
        assert finished.run.finished_at is not None
    finally:
        room.close()


def test_finished_only_when_target_met(settings: Settings, postgres_dsn: str) -> None:
    room = ControlRoom(settings)
    try:
        with room.connection() as conn:
            run = runs.create_run(conn, total=1_050, batch_size=500, seed=1, generator="test")
        assert run.batch_count == 3

        # Commit two of the three batches by hand through a worker that is paused afterwards.
        with room.connection() as conn:
            conn.execute(
                "UPDATE batches SET committed_at = now(), customers = size, pets = 0 "
                "WHERE run_id = %s AND batch_index < 2",
                (run.run_id,),
            )
            assert not runs.mark_finished_if_complete(conn, run.run_id)
            progress = runs.progress(conn, run.run_id)
        assert progress.customers == 1_000
        assert progress.state is not RunState.FINISHED

        assert run_worker(postgres_dsn, run.run_id) == "finished"
        final = room.progress(run.run_id)
        assert final is not None
        assert final.state is RunState.FINISHED
        assert final.customers == 1_050
    finally:
        room.close()


def test_second_start_while_active_is_rejected(control_room: ControlRoom) -> None:
    run = control_room.start_run(total=5_000_000, batch_size=50_000)
    try:
        with pytest.raises(RunStateError, match=rf"run {run.run_id} is running"):
            control_room.start_run()
    finally:
        control_room.pause(run.run_id)
        wait_until(
            lambda: control_room.progress(run.run_id).state is RunState.PAUSED,  # type: ignore[union-attr]
            message="the run to pause",
        )


def test_unreachable_dsn_is_a_clear_error() -> None:
    settings = parse_settings(
        {"postgres": {"dsn": "postgresql://willow@127.0.0.1:1/willow", "connect_timeout": 2}}
    )
    room = ControlRoom(settings)
    with pytest.raises(StoreError) as raised:
        room.progress()
    message = raised.value.message
    assert "127.0.0.1:1/willow" in message
    assert "within 2 s" in message
    assert "[postgres] dsn" in message


def test_workers_capped_at_pending_batches(control_room: ControlRoom) -> None:
    run = control_room.start_run(total=1_000, batch_size=1_000, workers=5)

    # The local host gives every launched worker its own log file at launch.
    launched = sorted(logs_dir().glob(f"run-{run.run_id}-*.log"))
    assert len(launched) == 1
    wait_until(
        lambda: control_room.progress(run.run_id).state is RunState.FINISHED,  # type: ignore[union-attr]
        message="the run to finish",
    )
