"""Refusals and clear errors of the SSH host: host keys, logins, reachability and bad installs."""

import subprocess
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from tests.helpers import wait_until
from tests.ssh.conftest import SshServer, free_port, gpu_host_section, keygen, remote_settings
from willow_core.config import parse_settings
from willow_core.control import ControlRoom
from willow_core.errors import HostError
from willow_core.hosts.base import LinkStatus
from willow_core.hosts.deploy import DeployResult, deploy, installed_version
from willow_core.hosts.ssh import HostKeyError, LoginError, SshConnectError, SshHost
from willow_core.store.runs import RunState


@pytest.fixture
def hosts() -> Iterator[list[SshHost]]:
    """A list to put SshHosts in; each is closed after the test."""
    created: list[SshHost] = []
    yield created
    for host in created:
        host.close()


def _host(hosts: list[SshHost], sshd: SshServer, remote_root: Path, **overrides: Any) -> SshHost:
    """Return an SshHost for `sshd` with `[gpu_host]` overrides, closed after the test."""
    settings = parse_settings({"gpu_host": gpu_host_section(sshd, remote_root, **overrides)})
    host = SshHost(settings.gpu_host)
    hosts.append(host)
    return host


def _fingerprint(public_key: Path) -> str:
    output = subprocess.run(
        ["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True
    ).stdout
    return output.split()[1]


def test_unknown_host_key_is_refused(
    sshd: SshServer, remote_root: Path, tmp_path: Path, hosts: list[SshHost]
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    host = _host(hosts, sshd, remote_root, known_hosts=str(known_hosts))
    fingerprint = _fingerprint(sshd.host_key.with_suffix(".pub"))

    with pytest.raises(HostKeyError) as refused:
        host.connect()

    message = refused.value.message
    assert "is not in" in message
    assert fingerprint in message
    trust_command = f"ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1 >> {known_hosts}"
    assert trust_command in message
    state = host.connection_state()
    assert state.status is LinkStatus.FAILED
    assert state.describe() == f"failed: unknown host key {fingerprint}"

    # The command in the message trusts the key, and the next attempt connects.
    subprocess.run(trust_command, shell=True, check=True, capture_output=True)
    host.connect()
    assert host.connection_state().status is LinkStatus.CONNECTED


def test_changed_host_key_is_refused(
    sshd: SshServer, remote_root: Path, tmp_path: Path, hosts: list[SshHost]
) -> None:
    other_key = tmp_path / "other_host_key"
    keygen(other_key)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other_key.with_suffix('.pub').read_text()}")
    host = _host(hosts, sshd, remote_root, known_hosts=str(known_hosts))

    with pytest.raises(HostKeyError) as refused:
        host.connect()

    message = refused.value.message
    assert "has CHANGED" in message
    assert _fingerprint(sshd.host_key.with_suffix(".pub")) in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {known_hosts}" in message
    assert host.connection_state().describe() == "failed: host key changed"


def test_wrong_key_fails_with_clear_message(
    sshd: SshServer, remote_root: Path, tmp_path: Path, hosts: list[SshHost]
) -> None:
    stranger = tmp_path / "stranger_key"
    keygen(stranger)
    host = _host(hosts, sshd, remote_root, key_path=str(stranger))

    with pytest.raises(LoginError) as rejected:
        host.connect()

    message = rejected.value.message
    assert f"127.0.0.1:{sshd.port} rejected the SSH login as" in message
    assert str(stranger) in message
    assert "authorized_keys" in message
    assert host.connection_state().status is LinkStatus.FAILED


def test_missing_key_file_is_named(
    sshd: SshServer, remote_root: Path, tmp_path: Path, hosts: list[SshHost]
) -> None:
    missing = tmp_path / "no_such_key"
    host = _host(hosts, sshd, remote_root, key_path=str(missing))

    with pytest.raises(LoginError, match=f"key_path {missing}: file not found"):
        host.connect()


def test_unreachable_host_is_retried(
    sshd: SshServer, remote_root: Path, hosts: list[SshHost]
) -> None:
    host = _host(hosts, sshd, remote_root, port=free_port())

    with pytest.raises(SshConnectError) as unreachable:
        host.connect()

    assert not unreachable.value.permanent
    assert "could not reach 127.0.0.1:" in unreachable.value.message
    assert "refused" in unreachable.value.message.lower()
    state = host.connection_state()
    assert state.status in (LinkStatus.RETRYING, LinkStatus.CONNECTING)


def test_hung_link_is_replaced(sshd: SshServer, remote_root: Path, hosts: list[SshHost]) -> None:
    host = _host(hosts, sshd, remote_root)
    host.connect()

    hung = sshd.suspend_sessions()
    assert hung, "no sshd session to suspend"
    try:
        wait_until(
            lambda: host.connection_state().status is not LinkStatus.CONNECTED,
            message="keepalives to notice the hung link",
        )
        wait_until(
            lambda: host.connection_state().status is LinkStatus.CONNECTED,
            message="a new connection",
        )
    finally:
        for session in hung:
            with suppress(psutil.NoSuchProcess):
                session.resume()

    assert host.run_command(["true"]).exit_status == 0


def test_remote_generator_refuses_embedded_postgres(sshd: SshServer, remote_root: Path) -> None:
    room = ControlRoom(remote_settings(sshd, remote_root, None))
    try:
        with pytest.raises(HostError) as refused:
            room.start_run()
    finally:
        room.close()

    assert "cannot reach the embedded PostgreSQL" in refused.value.message
    assert "[postgres] dsn" in refused.value.message


def test_start_without_venv_pauses_run(
    sshd: SshServer, remote_root: Path, remote_dsn: str, tmp_path: Path
) -> None:
    missing_venv = tmp_path / "no-venv"
    room = ControlRoom(remote_settings(sshd, remote_root, remote_dsn, venv=str(missing_venv)))
    try:
        with pytest.raises(HostError) as failed:
            room.start_run()
        progress = room.progress()
    finally:
        room.close()

    assert f"no Willow venv at {missing_venv}" in failed.value.message
    assert "willow deploy" in failed.value.message
    assert progress is not None
    assert progress.state is RunState.PAUSED
    with psycopg.connect(remote_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM workers").fetchone()
    assert row == (0,)


def test_deploy_with_missing_python_fails(
    sshd: SshServer, remote_root: Path, tmp_path: Path, hosts: list[SshHost]
) -> None:
    host = _host(
        hosts, sshd, remote_root, python="/nonexistent/python3", venv=str(tmp_path / "venv")
    )

    with pytest.raises(HostError) as failed:
        deploy(host, wheel=None)

    assert "Python interpreter '/nonexistent/python3' not found on 127.0.0.1" in (
        failed.value.message
    )


def test_broken_wheel_leaves_venv_unchanged(
    deployed: DeployResult, sshd: SshServer, remote_root: Path, tmp_path: Path, hosts: list[SshHost]
) -> None:
    broken = tmp_path / f"willow-{deployed.version}-py3-none-any.whl"
    broken.write_bytes(b"this is not a zip archive")
    host = _host(hosts, sshd, remote_root)

    with pytest.raises(HostError) as failed:
        deploy(host, wheel=broken)

    assert f"installing {broken.name} into {deployed.venv} on 127.0.0.1 failed" in (
        failed.value.message
    )
    assert "unchanged" in failed.value.message
    assert installed_version(host, host.paths()) == deployed.version


def test_deploy_refused_without_gpu_host() -> None:
    room = ControlRoom(parse_settings({}))
    try:
        with pytest.raises(HostError, match=r"set \[gpu_host\] host"):
            room.deploy()
    finally:
        room.close()
