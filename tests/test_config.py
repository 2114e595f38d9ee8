"""Config lookup and validation: errors name the file, the key and the value."""

from pathlib import Path

import pytest

from willow_core.config import find_config_file, load_settings, redact_dsn
from willow_core.errors import ConfigError


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_any_file() -> None:
    settings = load_settings()
    assert settings.source is None
    assert settings.postgres.dsn is None
    assert settings.generation.batch_size == 1_000


def test_malformed_toml_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.toml", "[generation\ntotal = 5\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert str(path) in raised.value.message
    assert "invalid TOML" in raised.value.message


def test_unknown_key_names_section_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.toml", "[generation]\nbatchsize = 5\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.message == (
        f"{path}: [generation] batchsize: unknown key; see config.toml.example for the valid keys"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[generation]\ntotal = -5\n", "[generation] total = -5: Input should be greater than 0"),
        ("[generation]\nbatch_size = 0\n", "[generation] batch_size = 0: Input should be greater"),
        ("[generation]\nworkers = 'many'\n", "[generation] workers = 'many': Input should be"),
        ("[tui]\nrefresh_seconds = 0\n", "[tui] refresh_seconds = 0: Input should be greater"),
    ],
)
def test_bad_value_names_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.message.startswith(f"{path}: {expected}")


def test_password_in_dsn_is_rejected_and_hidden(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.toml", '[postgres]\ndsn = "postgresql://u:hunter2@db/w"\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert "hunter2" not in raised.value.message
    assert "PGPASSWORD" in raised.value.message
    assert "~/.pgpass" in raised.value.message


def test_redact_dsn_masks_password() -> None:
    assert "s3cret" not in redact_dsn("host=db password=s3cret dbname=w")
    assert "password=***" in redact_dsn("host=db password=s3cret dbname=w")


def test_lookup_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_environment: Path
) -> None:
    user_file = _write(isolated_environment / "config" / "config.toml", "")
    assert find_config_file() == user_file

    local_file = _write(isolated_environment / "config.toml", "")
    assert find_config_file() == Path("config.toml")
    assert local_file.is_file()

    env_file = _write(tmp_path / "env.toml", "")
    monkeypatch.setenv("WILLOW_CONFIG", str(env_file))
    assert find_config_file() == env_file

    explicit = _write(tmp_path / "explicit.toml", "")
    assert find_config_file(explicit) == explicit


def test_missing_explicit_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="from --config"):
        find_config_file(tmp_path / "absent.toml")
    monkeypatch.setenv("WILLOW_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=r"from \$WILLOW_CONFIG"):
        find_config_file()
