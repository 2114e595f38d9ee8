"""The quote form file: the shipped default, compiling it, and rejecting bad files."""

from pathlib import Path

import pytest

from tests.quote_form.conftest import AS_OF, form_with_extra
from willow_core.quote_form.compiler import CompiledForm
from willow_core.quote_form.spec import QuoteFormError, default_form_path, load_form_spec


def test_default_form_loads() -> None:
    spec = load_form_spec()

    names = [field.name for field in spec.fields]
    assert spec.version == 1
    for expected in (
        "title",
        "full_name",
        "date_of_birth",
        "email",
        "phone",
        "address_line1",
        "postcode",
        "pet_name",
        "pet_species",
        "pet_breed",
        "pet_sex",
        "pet_date_of_birth",
        "pet_neutered",
        "pet_microchipped",
        "pet_microchip_number",
        "pet_purchase_price",
        "pet_pre_existing_conditions",
        "cover_start_date",
        "cover_level",
    ):
        assert expected in names
    assert spec.mapping["full_name"].columns == (
        "customers.title",
        "customers.first_name",
        "customers.last_name",
    )
    assert len(spec.fingerprint) == 64


def test_compiled_model_is_pydantic() -> None:
    form = CompiledForm(load_form_spec(), AS_OF)

    answers = form.model.model_validate(
        {
            "policyholder": {
                "title": "Ms",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "full_name": "Ms Ada Lovelace",
                "date_of_birth": "1990-02-03",
                "email": "ada@example.com",
                "phone": "07700 900123",
                "address_line1": "1 High Street",
                "town": "Leeds",
                "postcode": " ls1  1aa",
            },
            "pets": [],
            "cover": {"cover_start_date": AS_OF, "cover_level": "lifetime"},
        }
    )

    assert answers.policyholder.postcode == "LS1 1AA"  # type: ignore[attr-defined]
    assert form.model.model_json_schema()["title"] == "QuoteFormAnswers"


def _rejected(path: Path) -> str:
    with pytest.raises(QuoteFormError) as raised:
        load_form_spec(path)
    return raised.value.message


def test_unknown_rule_rejected(tmp_path: Path) -> None:
    path = form_with_extra(
        tmp_path,
        "",
        replace=(
            'rules = { max_length = 40 }\n\n[[fields]]\nname = "postcode"',
            'rules = { max_lenght = 40 }\n\n[[fields]]\nname = "postcode"',
        ),
    )

    message = _rejected(path)

    assert str(path) in message
    assert "field 'town'" in message
    assert "unknown rule 'max_lenght'" in message


def test_malformed_pattern_rejected(tmp_path: Path) -> None:
    path = form_with_extra(
        tmp_path,
        "",
        replace=('rules = { pattern = "^[0-9]{15}$" }', 'rules = { pattern = "^[0-9{15}$" }'),
    )

    message = _rejected(path)

    assert str(path) in message
    assert "field 'pet_microchip_number'" in message
    assert "is not a valid regular expression: unclosed character class" in message


@pytest.mark.parametrize(
    ("replace", "where", "reason"),
    [
        (('type = "uk_postcode"', 'type = "postcode"'), "field 'postcode'", "type 'postcode'"),
        (
            ('pet_breed = "pets.breed"', 'pet_breed = "pets.breeds"'),
            "[mapping] pet_breed",
            "has no column 'breeds'",
        ),
        (
            ('email = "customers.email"', 'email = "pets.name"'),
            "[mapping] email",
            "policyholder fields read the customers table",
        ),
        (
            ("rules = { max_length = 30 }", "rules = { min_age_years = 30 }"),
            "field 'pet_name'",
            "rule 'min_age_years' does not apply to a text field",
        ),
        (
            (
                'when = "pet_microchipped"',
                'when = "pet_chipped"',
            ),
            "cross-field rule on field",
            "names no field",
        ),
        (
            (
                'equals = true\nmessage = "a microchipped',
                'equals = "yes"\nmessage = "a microchipped',
            ),
            "cross-field rule on field 'pet_microchip_number'",
            "must be true or false",
        ),
        (
            ('default = "lifetime"', 'default = "platinum"'),
            "field 'cover_level'",
            "not one of rules.allowed",
        ),
        (("version = 1", "version = 0"), "[form] version", "not a whole number of 1 or more"),
        (
            ('name = "UK pet insurance quote"', "name = UK pet insurance quote"),
            "invalid TOML",
            "line",
        ),
    ],
)
def test_bad_form_rejected(
    tmp_path: Path, replace: tuple[str, str], where: str, reason: str
) -> None:
    path = form_with_extra(tmp_path, "", replace=replace)

    message = _rejected(path)

    assert message.startswith(f"quote form {path}: ")
    assert where in message
    assert reason in message


def test_missing_form_file_names_setting(tmp_path: Path) -> None:
    message = _rejected(tmp_path / "nowhere.toml")

    assert "nowhere.toml not found" in message
    assert "[quote_form] path" in message


def test_default_form_path_is_packaged() -> None:
    assert default_form_path().is_file()
