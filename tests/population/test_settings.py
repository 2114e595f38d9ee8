"""Bad population settings and tables give one clear error naming the value and the fix."""

from pathlib import Path

import pytest

from willow_core.config import PopulationSettings, parse_settings
from willow_core.errors import ConfigError
from willow_core.population.generator import build_profile, profile_from_run


def test_unreserved_email_domain_rejected() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings({"population": {"email_domains": ["example.com", "gmail.com"]}})
    assert "[population] email_domains" in raised.value.message
    assert "'gmail.com' is not reserved" in raised.value.message


def test_age_bands_must_ascend() -> None:
    with pytest.raises(ConfigError, match="strictly ascending"):
        parse_settings({"population": {"age_bands": [[30, 1.0], [18, 2.0]]}})
    with pytest.raises(ConfigError, match="max_age 40 must be above"):
        parse_settings({"population": {"age_bands": [[18, 1.0], [40, 2.0]], "max_age": 40}})


def test_species_without_breeds_rejected() -> None:
    settings = PopulationSettings(species_shares={"dog": 0.5, "hamster": 0.5})
    with pytest.raises(ConfigError, match="'hamster' has no breeds"):
        build_profile(settings)


def test_malformed_districts_file_named(tmp_path: Path) -> None:
    table = tmp_path / "districts.csv"
    table.write_text(
        "outward_code,population,town,locality,county\nAB10,100,Aberdeen,,Aberdeen City\n"
        "QX1,50,Nowhere,,Nowhere\n"
    )
    with pytest.raises(ConfigError) as raised:
        build_profile(PopulationSettings(districts_file=table))
    assert str(table) in raised.value.message
    assert "line 3" in raised.value.message
    assert "'QX1'" in raised.value.message


def test_missing_breeds_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "breeds.csv"
    with pytest.raises(ConfigError, match=f"{missing} not found"):
        build_profile(PopulationSettings(breeds_file=missing))


def test_custom_districts_used(tmp_path: Path) -> None:
    table = tmp_path / "districts.csv"
    table.write_text(
        "outward_code,population,town,locality,county\n"
        "TR21,10,Isles of Scilly,,Cornwall\nZE1,10,Lerwick,Scalloway,Shetland Islands\n"
    )
    profile = build_profile(PopulationSettings(districts_file=table))
    assert set(profile.districts.outward) == {"TR21", "ZE1"}


def test_run_profile_checks_fingerprints() -> None:
    described = build_profile().describe()
    assert profile_from_run(described).fingerprints == described["fingerprints"]
    described["fingerprints"]["districts"] = "0" * 64
    with pytest.raises(ConfigError, match="districts table on this host differs"):
        profile_from_run(described)
