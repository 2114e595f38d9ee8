"""Pilot tests of the generator host in the TUI: header state, `d` deploy and `x` stop."""

from collections.abc import Callable
from pathlib import Path

import psycopg
from textual.pilot import Pilot
from textual.widgets import Static

from tests.ssh.conftest import SshServer, remote_settings
from willow_core.config import Settings
from willow_core.hosts.deploy import DeployResult
from willow_core.store.runs import RunState
from willow_tui.app import WillowApp
from willow_tui.host_screens import ConfirmStopScreen, DeployScreen

TIMEOUT_SECONDS = 60


async def _wait_for(pilot: Pilot[None], condition: Callable[[], bool], awaited: str) -> None:
    for _ in range(int(TIMEOUT_SECONDS / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {awaited}")


def _text(app: WillowApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def _fast_refresh(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"tui": settings.tui.model_copy(update={"refresh_seconds": 0.2})}
    )


def _clear_focus(app: WillowApp) -> None:
    # On start the validation pane's filter Input (hidden) has the focus and would take the
    # keys as text; the keys under test are app bindings.
    app.screen.set_focus(None)


async def test_header_follows_ssh_link(
    sshd: SshServer, remote_root: Path, postgres_dsn: str
) -> None:
    # A configured database: the app would otherwise start an embedded one that outlives it.
    app = WillowApp(remote_settings(sshd, remote_root, postgres_dsn))
    async with app.run_test(size=(120, 34)) as pilot:
        await _wait_for(pilot, lambda: "127.0.0.1: connected" in app.sub_title, "connected")

        sshd.kill()
        try:
            await _wait_for(
                pilot, lambda: "127.0.0.1: retrying in " in app.sub_title, "retrying in the header"
            )
        finally:
            sshd.start()
        await _wait_for(pilot, lambda: "127.0.0.1: connected" in app.sub_title, "reconnected")
        await pilot.press("q")


async def test_deploy_key_shows_installed_version(
    deployed: DeployResult, sshd: SshServer, remote_root: Path, postgres_dsn: str
) -> None:
    app = WillowApp(remote_settings(sshd, remote_root, postgres_dsn))
    async with app.run_test(size=(120, 40)) as pilot:
        _clear_focus(app)
        await pilot.press("d")
        await _wait_for(pilot, lambda: isinstance(app.screen, DeployScreen), "the deploy screen")
        await _wait_for(
            pilot,
            lambda: f"Installed willow {deployed.version}" in _text(app, "#deploy-result"),
            "the installed version",
        )
        steps = _text(app, "#deploy-steps")
        assert "building the wheel" in steps
        assert "installing willow-" in steps
        await pilot.press("escape")
        assert not isinstance(app.screen, DeployScreen)


async def test_stop_key_asks_then_kills_workers(
    deployed: DeployResult, sshd: SshServer, remote_root: Path, remote_dsn: str
) -> None:
    app = WillowApp(_fast_refresh(remote_settings(sshd, remote_root, remote_dsn, total=2_000_000)))
    async with app.run_test(size=(120, 40)) as pilot:
        _clear_focus(app)
        await pilot.press("s")
        await _wait_for(
            pilot,
            lambda: "committed batch" in _text(app, "#population-log"),
            "the remote log in the population pane",
        )

        _clear_focus(app)
        await pilot.press("x")
        await _wait_for(pilot, lambda: isinstance(app.screen, ConfirmStopScreen), "the question")
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmStopScreen)
        progress = app.room.progress()
        assert progress is not None
        assert progress.state is RunState.RUNNING

        _clear_focus(app)
        await pilot.press("x")
        await _wait_for(pilot, lambda: isinstance(app.screen, ConfirmStopScreen), "the question")
        await pilot.press("y")
        await _wait_for(
            pilot,
            lambda: any("Stopped run" in note.message for note in app._notifications),
            "the stop toast",
        )
        await _wait_for(
            pilot,
            lambda: app.room.progress().state is RunState.PAUSED,  # type: ignore[union-attr]
            "the paused state",
        )
        await pilot.press("q")

    with psycopg.connect(remote_dsn) as conn:
        reasons = conn.execute("SELECT exit_reason FROM workers").fetchall()
    assert reasons == [("error: terminated by signal 15",)]
