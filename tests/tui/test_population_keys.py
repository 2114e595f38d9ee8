"""Pilot tests: the population pane's keys against a real PostgreSQL."""

import os
from collections.abc import Callable

import psycopg
from textual.pilot import Pilot
from textual.widgets import Static

from willow_core.config import Settings, parse_settings
from willow_core.control import ControlRoom
from willow_tui.app import WillowApp
from willow_tui.help_screen import HelpScreen

TIMEOUT_SECONDS = 60


def _settings(dsn: str) -> Settings:
    return parse_settings(
        {
            "postgres": {"dsn": dsn, "connect_timeout": 3},
            "generation": {"total": 600_000, "batch_size": 20_000, "seed": 99},
            "tui": {"refresh_seconds": 0.2},
        }
    )


def pane_text(app: WillowApp, widget_id: str = "population-status") -> str:
    return str(app.query_one(f"#{widget_id}", Static).content)


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(TIMEOUT_SECONDS / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_start_pause_quit_restart_resume(postgres_dsn: str) -> None:
    settings = _settings(postgres_dsn)

    app = WillowApp(settings)
    async with app.run_test(size=(110, 34)) as pilot:
        await wait_for(pilot, lambda: "No generation run yet" in pane_text(app), "empty state")
        await pilot.press("s")
        await wait_for(pilot, lambda: "State running" in pane_text(app), "running")
        await wait_for(pilot, lambda: "committed batch" in pane_text(app, "population-log"), "log")
        await pilot.press("p")
        await wait_for(pilot, lambda: "State paused" in pane_text(app), "paused")
        paused_text = pane_text(app)
        await pilot.press("q")
    assert app.return_code == 0

    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None
    (customers,) = row
    assert 0 < customers < 600_000
    assert f"Customers {customers:,} of 600,000" in paused_text

    restarted = WillowApp(settings)
    async with restarted.run_test(size=(110, 34)) as pilot:
        await wait_for(
            pilot, lambda: "State paused" in pane_text(restarted), "paused after restart"
        )
        assert f"Customers {customers:,} of 600,000" in pane_text(restarted)
        await pilot.press("r")
        await wait_for(pilot, lambda: "State finished" in pane_text(restarted), "finished")
        assert "Customers 600,000 of 600,000" in pane_text(restarted)


async def test_quit_leaves_generator_running(postgres_dsn: str) -> None:
    settings = _settings(postgres_dsn).model_copy(
        update={
            "generation": _settings(postgres_dsn).generation.model_copy(
                update={"total": 5_000_000, "batch_size": 50_000}
            )
        }
    )
    app = WillowApp(settings)
    async with app.run_test() as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: "running · 1 live worker" in pane_text(app), "a live worker")
        with psycopg.connect(postgres_dsn) as conn:
            row = conn.execute("SELECT pid FROM workers WHERE stopped_at IS NULL").fetchone()
        assert row is not None
        await pilot.press("q")

    (pid,) = row
    os.kill(pid, 0)  # raises ProcessLookupError if quitting had ended the worker
    room = ControlRoom(settings)
    try:
        progress = room.progress()
        assert progress is not None
        assert str(progress.state) == "running"
        room.pause()
    finally:
        room.close()


async def test_help_lists_every_key(postgres_dsn: str) -> None:
    app = WillowApp(_settings(postgres_dsn))
    async with app.run_test() as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-keys", Static).content)
        for binding in app.BINDINGS:
            assert binding.tooltip in text  # type: ignore[union-attr]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_unreachable_database_keeps_app_up() -> None:
    settings = parse_settings(
        {
            "postgres": {"dsn": "postgresql://willow@127.0.0.1:1/willow", "connect_timeout": 1},
            "tui": {"refresh_seconds": 0.5},
        }
    )
    app = WillowApp(settings)
    async with app.run_test() as pilot:
        await wait_for(
            pilot,
            lambda: "could not connect" in pane_text(app, "population-error"),
            "the connection error",
        )
        assert "127.0.0.1:1/willow" in pane_text(app, "population-error")
        assert "retrying" in pane_text(app, "population-error")
        await pilot.press("s")
        await wait_for(pilot, lambda: len(app._notifications) > 0, "an error toast")
        assert app.is_running


async def test_second_start_is_a_toast(postgres_dsn: str) -> None:
    settings = _settings(postgres_dsn)
    app = WillowApp(settings)
    async with app.run_test() as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: "State running" in pane_text(app), "running")
        await pilot.press("s")
        await wait_for(
            pilot,
            lambda: any("has not finished" in n.message for n in app._notifications),
            "the rejection toast",
        )
        await pilot.press("p")
        await wait_for(pilot, lambda: "State paused" in pane_text(app), "paused")
