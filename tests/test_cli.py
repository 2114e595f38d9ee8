"""The `willow` command end to end against a real PostgreSQL."""

import pytest

from willow_core.cli import main
from willow_core.config import DSN_ENV


@pytest.fixture
def dsn_in_env(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(DSN_ENV, postgres_dsn)
    return postgres_dsn


def test_generate_status_runs(dsn_in_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--total", "1500", "--batch-size", "500", "--seed", "3"]) == 0
    assert "Run 1 finished." in capsys.readouterr().out

    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "run 1: finished" in status
    assert "customers  1,500 of 1,500 (100.0%)" in status
    assert "batches    3 of 3 committed (batch size 500)" in status

    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "finished" in listing
    assert "1,500" in listing


def test_resume_of_finished_run_fails(dsn_in_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--total", "10", "--batch-size", "5"]) == 0
    capsys.readouterr()
    assert main(["generate", "--resume"]) == 1
    assert capsys.readouterr().err.strip() == (
        "willow: run 1 has finished; start a new run (s, or willow generate)"
    )


def test_status_without_runs(dsn_in_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    assert "No generation run yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--total", "-5"], "argument --total: -5 must be greater than 0"),
        (["generate", "--batch-size", "0"], "argument --batch-size: 0 must be greater than 0"),
        (["generate", "--seed", "x"], "argument --seed: 'x' is not a whole number"),
    ],
)
def test_bad_arguments_are_rejected(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_config_file_exit_code(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[generation]\ntotal = -1\n")
    assert main(["--config", str(path), "status"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"willow: {path}: [generation] total = -1: Input should be greater than 0"
    )
