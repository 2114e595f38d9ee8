"""Runs on a generator host over SSH: deploy, start, pause, resume, stop, outages and secrets."""

import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import willow_core
from tests.helpers import population_digest, wait_until
from tests.ssh.conftest import PasswordPostgres, SshServer, remote_settings
from willow_core.config import Settings, parse_settings
from willow_core.control import ControlRoom
from willow_core.errors import HostError
from willow_core.hosts.base import GeneratorHost, LinkStatus
from willow_core.hosts.deploy import DeployResult
from willow_core.hosts.local import LocalHost
from willow_core.hosts.ssh import SshHost
from willow_core.store.runs import RunState

LONG_RUN = 2_000_000
"""A target no test waits for: those runs end by pause or stop."""


def _committed_customers(dsn: str, run_id: int) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(customers), 0) FROM batches WHERE run_id = %s", (run_id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _workers(dsn: str, run_id: int) -> list[tuple[str, int, str, str | None]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT host, pid, log_path, exit_reason FROM workers WHERE run_id = %s "
            "ORDER BY worker_id",
            (run_id,),
        ).fetchall()


def _state(room: ControlRoom, run_id: int) -> RunState:
    progress = room.progress(run_id)
    assert progress is not None
    return progress.state


@pytest.fixture
def room_factory() -> Iterator[Callable[..., ControlRoom]]:
    """Build ControlRooms that are closed, and whose unfinished runs are stopped, afterwards."""
    rooms: list[ControlRoom] = []

    def make(settings: Settings, host: GeneratorHost | None = None) -> ControlRoom:
        room = ControlRoom(settings, host)
        rooms.append(room)
        return room

    yield make
    for room in rooms:
        try:
            progress = room.progress()
            if progress is not None and progress.state is not RunState.FINISHED:
                room.stop(progress.run.run_id)
        except Exception as error:  # cleanup must not hide the test's own failure
            logging.getLogger("tests").warning("cleanup of a run failed: %s", error)
        room.close()


def test_deploy_installs_core_into_venv(
    deployed: DeployResult, sshd: SshServer, remote_root: Path
) -> None:
    assert deployed.version == willow_core.__version__
    assert deployed.pinned
    assert deployed.venv == str(remote_root / "venv")

    settings = remote_settings(sshd, remote_root, None)
    room = ControlRoom(settings)
    steps: list[str] = []
    try:
        again = room.deploy(progress=steps.append)
        assert again.version == willow_core.__version__
        assert any(step.startswith("building the wheel") for step in steps)
        assert any(step.startswith("installing willow-") for step in steps)

        host = room.host
        assert isinstance(host, SshHost)
        python = host.paths().python
        worker = host.run_command([python, "-c", "import willow_core.population.worker"])
        assert worker.exit_status == 0, worker.stderr
        for package in ("textual", "asyncssh", "neo4j", "pgserver"):
            missing = host.run_command([python, "-c", f"import {package}"])
            assert missing.exit_status != 0, f"{package} was installed on the host"

        import faker

        remote_faker = host.run_command([python, "-c", "import faker; print(faker.VERSION)"])
        assert remote_faker.stdout.strip() == faker.VERSION
    finally:
        room.close()


def test_remote_run_matches_local_run(
    deployed: DeployResult,
    sshd: SshServer,
    remote_root: Path,
    remote_dsn: str,
    make_database: Callable[[], str],
    room_factory: Callable[..., ControlRoom],
) -> None:
    total, batch_size, seed = 20_000, 500, 4_711
    room = room_factory(
        remote_settings(
            sshd, remote_root, remote_dsn, total=total, batch_size=batch_size, seed=seed
        )
    )

    run = room.start_run()
    wait_until(lambda: _committed_customers(remote_dsn, run.run_id) > 0, message="a first batch")
    room.pause(run.run_id)
    wait_until(lambda: _state(room, run.run_id) is RunState.PAUSED, message="the pause")
    paused_at = _committed_customers(remote_dsn, run.run_id)
    assert 0 < paused_at < total

    [(worker_host, pid, log_path, exit_reason)] = _workers(remote_dsn, run.run_id)
    assert worker_host == socket.gethostname()
    assert exit_reason == "paused"
    assert log_path.startswith(str(remote_root / "logs"))
    assert not room.host.is_alive(pid)
    progress = room.progress(run.run_id)
    assert progress is not None
    tail = room.log_tail(progress, 200)
    assert any("committed batch" in line for line in tail)

    room.resume(run.run_id)
    wait_until(lambda: _state(room, run.run_id) is RunState.FINISHED, message="the remote run")
    assert len(_workers(remote_dsn, run.run_id)) == 2

    local_dsn = make_database()
    local_settings = parse_settings(
        {
            "postgres": {"dsn": local_dsn},
            "generation": {"total": total, "batch_size": batch_size, "seed": seed},
        }
    )
    local = room_factory(local_settings, LocalHost())
    local_run = local.start_run()
    wait_until(lambda: _state(local, local_run.run_id) is RunState.FINISHED, message="local run")

    remote_digest = population_digest(remote_dsn)
    assert remote_digest[0] == total
    assert remote_digest == population_digest(local_dsn)


def test_stop_kills_recorded_pid(
    deployed: DeployResult,
    sshd: SshServer,
    remote_root: Path,
    remote_dsn: str,
    room_factory: Callable[..., ControlRoom],
) -> None:
    room = room_factory(remote_settings(sshd, remote_root, remote_dsn, total=LONG_RUN))
    run = room.start_run(workers=2)
    wait_until(lambda: len(_workers(remote_dsn, run.run_id)) == 2, message="two workers")
    wait_until(lambda: _committed_customers(remote_dsn, run.run_id) > 0, message="a first batch")
    pids = {pid for _, pid, _, _ in _workers(remote_dsn, run.run_id)}
    assert len(pids) == 2

    stopped = room.stop(run.run_id)

    assert set(stopped.signalled) == pids
    assert stopped.elsewhere == 0
    wait_until(lambda: not any(room.host.is_alive(pid) for pid in pids), message="worker exit")
    wait_until(lambda: _state(room, run.run_id) is RunState.PAUSED, message="the paused state")
    for _, _, log_path, reason in _workers(remote_dsn, run.run_id):
        log_text = room.host.tail_log(log_path, 5)
        assert reason is not None
        assert "signal 15" in reason, log_text
    # Only whole batches were committed: the ones in flight rolled back.
    assert _committed_customers(remote_dsn, run.run_id) % 500 == 0


def test_killed_worker_shows_crashed_then_resumes(
    deployed: DeployResult,
    sshd: SshServer,
    remote_root: Path,
    remote_dsn: str,
    room_factory: Callable[..., ControlRoom],
) -> None:
    room = room_factory(remote_settings(sshd, remote_root, remote_dsn, total=LONG_RUN))
    host = room.host
    assert isinstance(host, SshHost)
    run = room.start_run()
    wait_until(lambda: _committed_customers(remote_dsn, run.run_id) > 0, message="a first batch")
    [(_, pid, _, _)] = _workers(remote_dsn, run.run_id)

    # A crash the worker cannot record: SIGKILL on the host, by its recorded PID.
    assert host.run_command(["kill", "-KILL", str(pid)]).exit_status == 0
    wait_until(lambda: _state(room, run.run_id) is RunState.CRASHED, message="the crashed state")
    [(_, _, _, reason)] = _workers(remote_dsn, run.run_id)
    assert reason == f"process {pid} on {host.machine} has gone"

    room.resume(run.run_id)
    before = _committed_customers(remote_dsn, run.run_id)
    wait_until(
        lambda: _committed_customers(remote_dsn, run.run_id) > before, message="commits after r"
    )
    assert _state(room, run.run_id) is RunState.RUNNING
    assert len(_workers(remote_dsn, run.run_id)) == 2


def test_generator_survives_sshd_outage(
    deployed: DeployResult,
    sshd: SshServer,
    remote_root: Path,
    remote_dsn: str,
    room_factory: Callable[..., ControlRoom],
) -> None:
    room = room_factory(remote_settings(sshd, remote_root, remote_dsn, total=LONG_RUN))
    run = room.start_run()
    wait_until(lambda: _committed_customers(remote_dsn, run.run_id) > 0, message="a first batch")
    assert room.host_state().status is LinkStatus.CONNECTED

    sshd.kill()
    try:
        wait_until(
            lambda: room.host_state().status is LinkStatus.RETRYING, message="the retrying state"
        )
        assert room.host_state().describe().startswith("retrying in ")
        before = _committed_customers(remote_dsn, run.run_id)
        wait_until(
            lambda: _committed_customers(remote_dsn, run.run_id) > before + 2_000,
            message="commits while sshd is down",
        )
        progress = room.progress(run.run_id)
        assert progress is not None
        assert progress.state is RunState.RUNNING
        with pytest.raises(HostError):
            room.log_tail(progress, 5)
    finally:
        sshd.start()

    wait_until(
        lambda: room.host_state().status is LinkStatus.CONNECTED,
        timeout=60,
        message="the reconnection",
    )
    progress = room.progress(run.run_id)
    assert progress is not None
    assert any("committed batch" in line for line in room.log_tail(progress, 20))
    stopped = room.stop(run.run_id)
    assert len(stopped.signalled) == 1


@pytest.mark.parametrize("detach", ["tmux", "setsid"])
def test_password_stays_off_command_lines(
    deployed: DeployResult,
    sshd: SshServer,
    remote_root: Path,
    remote_dsn: str,
    password_postgres: PasswordPostgres,
    room_factory: Callable[..., ControlRoom],
    caplog: pytest.LogCaptureFixture,
    detach: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = password_postgres.password
    room = room_factory(
        remote_settings(sshd, remote_root, remote_dsn, total=LONG_RUN, detach=detach)
    )
    host = room.host
    assert isinstance(host, SshHost)

    run = room.start_run()
    # A committed batch proves the worker logged in over TCP, which needs the password.
    wait_until(lambda: _committed_customers(remote_dsn, run.run_id) > 0, message="a first batch")
    [(_, pid, log_path, _)] = _workers(remote_dsn, run.run_id)

    listing = host.run_command(["ps", "-eo", "pid=,args="])
    assert listing.exit_status == 0
    assert f"willow_core.population.worker --run-id {run.run_id}" in listing.stdout
    assert password not in listing.stdout

    environment = host.run_command(["cat", f"/proc/{pid}/environ"])
    assert password in environment.stdout, "the worker did not get the password in its environment"
    log_text = host.run_command(["cat", log_path])
    assert "committed batch" in log_text.stdout
    assert password not in log_text.stdout
    assert password not in caplog.text

    session = host.run_command(["ps", "-o", "sid=", "-p", str(pid)])
    tmux_sessions = host.run_command(
        ["tmux", "-L", "willow", "list-panes", "-a", "-F", "#{pane_pid}"]
    )
    if detach == "tmux":
        assert str(pid) in tmux_sessions.stdout.split()
    else:
        assert int(session.stdout.strip()) == pid
        assert str(pid) not in tmux_sessions.stdout.split()
