"""The shipped example config must parse and name every setting."""

import tomllib
from pathlib import Path

from pydantic import BaseModel

from willow_core.config import Settings, parse_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.toml.example"


def _documented_keys(text: str) -> set[str]:
    keys = set()
    section = ""
    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line and section and " " not in line.split("=")[0].strip():
            keys.add(f"{section}.{line.split('=')[0].strip()}")
    return keys


def _settings_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _settings_keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_example_parses() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    parse_settings(data, EXAMPLE)


def test_example_documents_every_setting() -> None:
    documented = _documented_keys(EXAMPLE.read_text())
    expected = _settings_keys(Settings)
    assert expected - documented == set(), "settings missing from config.toml.example"
    assert documented - expected == set(), "config.toml.example names unknown settings"
