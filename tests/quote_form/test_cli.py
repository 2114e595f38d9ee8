"""`willow validate`, `coverage`, `npc` and `milestones` end to end against a real PostgreSQL."""

from pathlib import Path

import pytest

from tests.quote_form.conftest import form_with_extra
from willow_core.cli import main
from willow_core.config import DSN_ENV
from willow_core.store.runs import Run


@pytest.fixture
def dsn_in_env(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    return postgres_dsn


def test_validate_all_then_coverage(
    dsn_in_env: str, faulty_population: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--all", "--as-of", "2026-12-04"]) == 1
    output = capsys.readouterr().out
    assert "Validation 1 finished: 600 NPCs and" in output
    assert "postcode" in output
    assert "address_line1" in output

    assert main(["coverage"]) == 0
    coverage = capsys.readouterr().out
    assert "validation 1 of 600 NPCs" in coverage
    assert "No source in the population: pet_purchase_price" in coverage

    assert main(["milestones"]) == 0
    milestones = capsys.readouterr().out
    assert "Schema compatibility" in milestones
    assert "population: 600 NPCs" in milestones


def test_validate_ids_and_sample(
    dsn_in_env: str, population: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["validate", "--ids", "0-9,20", "700"])
    output = capsys.readouterr().out
    assert "Not in any committed batch, skipped: 700." in output
    assert ": 11 NPCs and" in output

    main(["validate", "--sample", "50", "--seed", "4"])
    assert ": 50 NPCs and" in capsys.readouterr().out


def test_npc_record_printed(
    dsn_in_env: str, clean_population: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["npc", "3", "--as-of", "2026-12-04"]) == 0
    output = capsys.readouterr().out
    assert "NPC 3:" in output
    assert "Regenerate: run 1 · seed 7 · batch 0 (customers 0-199) · position 3" in output
    assert "generate_batch(7, 0, 0, 200).customers[3]" in output

    assert main(["npc", "5000"]) == 1
    assert "NPC 5000 not found" in capsys.readouterr().err


def test_bad_form_file_exit_code(
    dsn_in_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    form = form_with_extra(
        tmp_path,
        "",
        replace=("rules = { max_length = 50 }", "rules = { max_length = 50, colour = 1 }"),
    )
    Path("config.toml").write_text(f'[quote_form]\npath = "{form}"\n')

    assert main(["validate", "--all"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"willow: quote form {form}: field 'pet_breed': unknown rule 'colour'")
