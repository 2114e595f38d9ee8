"""Pilot tests of the validation pane, the NPC record and coverage screens, on a real PostgreSQL."""

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from rich.console import Console
from rich.text import Text
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.quote_form.conftest import (
    AS_OF,
    form_with_extra,
    generate_population,
    make_clean,
    settings_with_form,
)
from willow_core.config import Settings, parse_settings
from willow_core.control import ControlRoom
from willow_core.quote_form.service import QuoteFormService
from willow_core.quote_form.validation import Selection
from willow_core.store.runs import Run
from willow_tui.app import WillowApp
from willow_tui.coverage_screen import CoverageScreen
from willow_tui.npc_record_screen import NpcRecordScreen
from willow_tui.validation_pane import ValidationPane, ValidationProgressed

TIMEOUT_SECONDS = 60
SIZE = (170, 50)


def _tui_settings(settings: Settings, **quote_form: int) -> Settings:
    return settings.model_copy(
        update={
            "quote_form": settings.quote_form.model_copy(update=quote_form),
            "tui": settings.tui.model_copy(update={"refresh_seconds": 0.5}),
        }
    )


def _text(app: WillowApp, selector: str) -> str:
    """Return a Static's content as plain text, rendering rich tables as they would print."""
    content = app.screen.query_one(selector, Static).content
    if isinstance(content, str | Text):
        return str(content)
    console = Console(width=200, color_system=None)
    with console.capture() as captured:
        console.print(content)
    return captured.get()


def _table(app: WillowApp) -> DataTable[object]:
    return app.query_one("#validation-failures", DataTable)


def _rows(app: WillowApp) -> list[list[str]]:
    table = _table(app)
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


async def _wait_for(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(TIMEOUT_SECONDS / 0.1)):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_v_validates_with_progress(faulty_population: Run, settings: Settings) -> None:
    messages: list[Message] = []
    app = WillowApp(_tui_settings(settings, sample_size=300, chunk_size=100))

    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await _wait_for(
            pilot, lambda: "No validation yet" in _text(app, "#validation-status"), "the empty log"
        )
        await pilot.press("v")
        await _wait_for(
            pilot,
            lambda: "Validation 1 finished" in _text(app, "#validation-status"),
            "the validation",
        )
        await _wait_for(pilot, lambda: _table(app).row_count > 0, "failures")

        # A bubbling message reaches the hook once per node it passes through.
        unique = {id(m): m for m in messages if isinstance(m, ValidationProgressed)}
        progress = [m.progress for m in unique.values()]
        assert [p.done for p in progress] == [100, 200, 300]
        assert {p.total for p in progress} == {300}
        assert "300 NPCs" in _text(app, "#validation-status")
        counts = _text(app, "#validation-counts")
        assert "By field" in counts
        assert "postcode" in counts
        assert "uk_postcode" in counts
        milestones = _text(app, "#validation-milestones")
        assert "Schema compatibility" in milestones
        assert "Form field coverage" in milestones
        assert "population 600" in milestones
        first_row = _rows(app)[0]

    with psycopg.connect(settings.postgres_dsn() or "") as conn:
        newest = conn.execute(
            "SELECT customer_id, field FROM validation_failures ORDER BY failure_id DESC LIMIT 1"
        ).fetchone()
    assert newest is not None
    assert (int(first_row[0]), first_row[2]) == newest


async def test_filter_then_clear(
    faulty_population: Run, settings: Settings, room: ControlRoom
) -> None:
    QuoteFormService(room).validate(Selection("all"), as_of=AS_OF)
    app = WillowApp(_tui_settings(settings))

    async with app.run_test(size=SIZE) as pilot:
        await _wait_for(pilot, lambda: _table(app).row_count > 0, "failures")
        assert {row[2] for row in _rows(app)} == {"postcode", "address_line1"}

        await pilot.press("slash")
        field = app.query_one("#validation-filter", Input)
        assert field.has_focus
        await pilot.press(*"uk_postcode", "enter")
        await _wait_for(
            pilot,
            lambda: {row[3] for row in _rows(app)} == {"uk_postcode"},
            "only postcode failures",
        )
        assert app.query_one(ValidationPane).border_subtitle == "filter: uk_postcode"

        await pilot.press("escape")
        await _wait_for(
            pilot,
            lambda: {row[2] for row in _rows(app)} == {"postcode", "address_line1"},
            "every failure again",
        )
        assert not field.display


async def test_enter_opens_record_escape_returns(
    faulty_population: Run, settings: Settings, room: ControlRoom
) -> None:
    QuoteFormService(room).validate(Selection("all"), as_of=AS_OF)
    app = WillowApp(_tui_settings(settings))

    async with app.run_test(size=SIZE) as pilot:
        await _wait_for(pilot, lambda: _table(app).row_count > 5, "failures")
        _table(app).focus()
        await pilot.press("down", "down", "down")
        chosen = _rows(app)[3]
        await pilot.press("enter")

        await _wait_for(pilot, lambda: isinstance(app.screen, NpcRecordScreen), "the record")
        await _wait_for(
            pilot, lambda: "failing answer" in _text(app, "#record-title"), "the record's answers"
        )
        title = _text(app, "#record-title")
        assert f"NPC {chosen[0]}" in title
        assert f"opened from {chosen[2]} ({chosen[3]})" in title
        form = _text(app, "#record-form")
        assert "Postcode" in form
        assert "TR3W 5AA" in form
        assert "✗" in form
        assert "✓ valid" in form
        assert "seed 7 · batch" in _text(app, "#record-regenerate")

        await pilot.press("escape")
        assert isinstance(app.screen.query_one(ValidationPane), ValidationPane)
        assert _table(app).cursor_row == 3
        app.query_one(ValidationPane).refresh_log()
        await pilot.pause(0.5)
        assert _table(app).cursor_row == 3
        assert _rows(app)[3] == chosen


async def test_coverage_view(faulty_population: Run, settings: Settings, room: ControlRoom) -> None:
    QuoteFormService(room).validate(Selection("all"), as_of=AS_OF)
    app = WillowApp(_tui_settings(settings))

    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("c")
        await _wait_for(pilot, lambda: isinstance(app.screen, CoverageScreen), "coverage")
        await _wait_for(
            pilot, lambda: "validation 1 of 600" in _text(app, "#coverage-title"), "coverage loaded"
        )
        assert "customers.postcode" in _text(app, "#coverage-table")
        uncovered = _text(app, "#coverage-uncovered")
        assert "No source in the population: pet_purchase_price" in uncovered
        await pilot.press("escape")
        assert not isinstance(app.screen, CoverageScreen)


@pytest.mark.parametrize(
    ("replace", "reason"),
    [
        (
            ("rules = { max_length = 50 }", "rules = { max_length = 50, colour = 1 }"),
            "field 'pet_breed': unknown rule 'colour'",
        ),
        (
            ('rules = { pattern = "^[0-9]{15}$" }', 'rules = { pattern = "^[0-9{15}$" }'),
            "field 'pet_microchip_number': rule pattern '^[0-9{15}$' is not a valid regular "
            "expression",
        ),
    ],
)
async def test_bad_form_keeps_tui_running(
    faulty_population: Run,
    settings: Settings,
    tmp_path: Path,
    replace: tuple[str, str],
    reason: str,
) -> None:
    form = form_with_extra(tmp_path, "", replace=replace)
    app = WillowApp(_tui_settings(settings_with_form(settings, form)))

    async with app.run_test(size=SIZE) as pilot:
        await _wait_for(
            pilot, lambda: "No validation yet" in _text(app, "#validation-status"), "the empty log"
        )
        await pilot.press("v")
        await _wait_for(
            pilot, lambda: "Invalid quote form" in _text(app, "#validation-error"), "the error"
        )
        error = _text(app, "#validation-error").replace("\n", "")
        assert str(form) in error
        assert reason in error

        await pilot.press("c")
        await _wait_for(pilot, lambda: isinstance(app.screen, CoverageScreen), "coverage")
        await _wait_for(
            pilot,
            lambda: reason in _text(app, "#coverage-error").replace("\n", ""),
            "the coverage error",
        )
        await pilot.press("escape")

        form.write_text(form.read_text().replace(replace[1], replace[0]))
        await pilot.press("v")
        await _wait_for(
            pilot,
            lambda: "Validation 1 finished" in _text(app, "#validation-status"),
            "a validation with the repaired form",
        )
        assert not app.query_one("#validation-error", Static).display


SNAPSHOT_DATABASE = "willow_record_snapshot"


@pytest.fixture
def snapshot_settings(postgres_cluster: str) -> Iterator[Settings]:
    """A clean 600-NPC population with one invalid postcode, validated on a fixed day, in a
    database with a fixed name (the header shows it)."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(SNAPSHOT_DATABASE)
    )
    with psycopg.connect(postgres_cluster, autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SNAPSHOT_DATABASE)))
    dsn = psycopg.conninfo.make_conninfo(postgres_cluster, dbname=SNAPSHOT_DATABASE)
    generate_population(dsn, 600, 200, 7)
    make_clean(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        owner = conn.execute(
            "SELECT customer_id FROM pets WHERE microchipped ORDER BY pet_id LIMIT 1"
        ).fetchone()
        assert owner is not None
        conn.execute("UPDATE customers SET postcode = 'tr3w5aa' WHERE customer_id = %s", owner)

    settings = _tui_settings(parse_settings({"postgres": {"dsn": dsn}}))
    room = ControlRoom(settings)
    try:
        QuoteFormService(room).validate(Selection("ids", ids=owner), as_of=AS_OF)
    finally:
        room.close()
    yield settings

    with psycopg.connect(postgres_cluster, autocommit=True) as admin:
        admin.execute(drop)


def test_record_screen_snapshot(snap_compare, snapshot_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    async def open_record(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, WillowApp)
        await _wait_for(pilot, lambda: _table(app).row_count == 1, "the failure")
        _table(app).focus()
        await pilot.press("enter")
        await _wait_for(
            pilot, lambda: "failing answer" in _text(app, "#record-title"), "the record"
        )
        await _wait_for(
            pilot,
            lambda: "Reading the graph" not in _text(app, "#record-journey"),
            "the journey section",
        )

    assert snap_compare(
        WillowApp(snapshot_settings), terminal_size=(150, 86), run_before=open_record
    )
