"""The `willow deploy`, `willow host`, `willow generate --workers` and `willow stop` commands."""

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import wait_until
from tests.ssh.conftest import SshServer, gpu_host_section
from willow_core.cli import main
from willow_core.hosts.deploy import DeployResult


def _write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def _workers(dsn: str) -> list[tuple[int, str | None]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT pid, exit_reason FROM workers ORDER BY worker_id").fetchall()


def test_cli_drives_remote_host(
    deployed: DeployResult,
    sshd: SshServer,
    remote_root: Path,
    remote_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = _write_config(
        tmp_path / "config.toml",
        {
            "postgres": {"dsn": remote_dsn, "connect_timeout": 5},
            "generation": {"total": 2_000_000, "batch_size": 500, "seed": 5},
            "gpu_host": gpu_host_section(sshd, remote_root),
        },
    )
    willow = ["--config", str(config)]

    assert main([*willow, "host"]) == 0
    shown = capsys.readouterr().out
    assert "127.0.0.1" in shown
    assert "connected" in shown
    assert f"willow {deployed.version}" in shown

    assert main([*willow, "deploy"]) == 0
    assert f"Installed willow {deployed.version} into {deployed.venv}" in capsys.readouterr().out

    assert main([*willow, "generate", "--workers", "2", "--detach"]) == 0
    assert "on 127.0.0.1" in capsys.readouterr().out
    wait_until(lambda: len(_workers(remote_dsn)) == 2, message="two remote workers")

    assert main([*willow, "stop"]) == 2
    assert "pass --yes" in capsys.readouterr().err

    assert main([*willow, "stop", "--yes"]) == 0
    assert "SIGTERM sent to 2 worker(s) on 127.0.0.1" in capsys.readouterr().out
    wait_until(
        lambda: all(reason is not None for _, reason in _workers(remote_dsn)),
        message="both workers to record their stop",
    )
    assert all("signal 15" in str(reason) for _, reason in _workers(remote_dsn))
