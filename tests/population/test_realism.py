"""Realism of 100,000 generated NPCs, checked against independent definitions of each rule."""

import csv
import re
from datetime import date

import numpy as np
import pytest

from willow_core.config import PopulationSettings
from willow_core.population.generator import build_profile, generate_batch, generate_pet
from willow_core.population.models import MAX_PETS_PER_CUSTOMER
from willow_core.population.report import PopulationSample, evaluate, generate_sample
from willow_core.population.tables import data_path
from willow_core.quote_form.postcode import postcode_problem

RESERVED_DOMAINS = {"example.com", "example.org", "example.net"}
"""RFC 2606's second-level domains reserved for documentation: the default email domains."""

OFCOM_DRAMA = re.compile(
    r"^(07700 900|01632 960|020 7946 0|0113 496 0|0114 496 0|0115 496 0|0116 496 0|"
    r"0117 496 0|0118 496 0|0121 496 0|0131 496 0|0141 496 0|0151 496 0|0161 496 0|"
    r"0191 498 0|029 2018 0)[0-9]{3}$"
)
"""Ofcom's telephone numbers for drama: the ranges the generator may use, 1,000 numbers each."""


def _district_table() -> dict[str, tuple[str, str]]:
    with data_path("postcode_districts.csv").open(newline="") as handle:
        return {row["outward_code"]: (row["town"], row["county"]) for row in csv.DictReader(handle)}


def test_report_within_tolerance(sample: PopulationSample) -> None:
    report = evaluate(sample, build_profile())
    assert len(report.checks) > 60
    assert [check.name for check in report.flagged] == []


def test_report_flags_drift() -> None:
    drifted = build_profile(PopulationSettings(pet_owner_share=0.5, mobile_share=0.4))
    report = evaluate(generate_sample(drifted, 20_000), build_profile())
    flagged = {check.name for check in report.flagged}
    assert "pets: customers owning one or more" in flagged
    assert "phones: mobile" in flagged
    assert "customers: female" not in flagged


def test_postcodes_real_districts(sample: PopulationSample) -> None:
    table = _district_table()
    customers = sample.customers
    for postcode, town, county in zip(
        customers["postcode"], customers["town"], customers["county"], strict=True
    ):
        assert postcode_problem(postcode) is None, postcode
        outward = postcode.split(" ")[0]
        assert outward in table, postcode
        assert table[outward] == (town, county), (postcode, town, county)


def test_postcode_districts_weighted(sample: PopulationSample) -> None:
    outward = np.array([p.split(" ")[0] for p in sample.customers["postcode"]])
    # B (Birmingham) districts hold about 3% of Great Britain's population, ZE (Shetland) 0.04%.
    birmingham = np.mean([re.match(r"B[0-9]", code) is not None for code in outward])
    assert 0.025 < birmingham < 0.037
    assert np.mean(np.char.startswith(outward.astype(str), "ZE")) < 0.002


def test_contacts_reserved(sample: PopulationSample) -> None:
    for email in sample.customers["email"]:
        local, domain = email.rsplit("@", 1)
        assert domain in RESERVED_DOMAINS, email
        assert re.fullmatch(r"[a-z0-9._]+", local), email
    for phone in sample.customers["phone"]:
        assert OFCOM_DRAMA.match(phone), phone


def test_titles_match_sex_and_age(sample: PopulationSample) -> None:
    customers = sample.customers
    age = (customers["created_at"].astype("datetime64[D]") - customers["date_of_birth"]).astype(
        int
    ) / 365.25
    for title, sex, years in zip(customers["title"], customers["sex"], age, strict=True):
        assert 18 <= years <= 90
        if title in ("Mrs", "Miss", "Ms"):
            assert sex == "female"
        elif title == "Mr":
            assert sex == "male"
        elif title == "Dr":
            assert years >= 27
        else:
            assert title == "Mx"


def test_microchips_unique(sample: PopulationSample) -> None:
    pets = sample.pets
    numbers = [n for n in pets["microchip_number"] if n is not None]
    assert len(numbers) == int(pets["microchipped"].sum())
    assert all(re.fullmatch(r"[0-9]{15}", n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_pets_belong_to_owners(sample: PopulationSample) -> None:
    pets = sample.pets
    assert (pets["pet_id"] // MAX_PETS_PER_CUSTOMER == pets["customer_id"]).all()
    assert len(set(pets["pet_id"].tolist())) == len(pets["pet_id"])
    assert (pets["date_of_birth"] <= np.datetime64("2025-11-02")).all()
    assert set(pets["species"]) == {"dog", "cat", "rabbit"}


def test_settings_change_output() -> None:
    settings = PopulationSettings(
        pet_owner_share=1.0,
        pets_per_owner=[0, 1],
        species_shares={"cat": 1.0},
        email_domains=["mail.test"],
    )
    batch = generate_batch(3, 0, 0, 500, build_profile(settings))
    assert len(batch.pets) == 1_000
    assert set(batch.pets.species) == {"cat"}
    assert all(email.endswith("@mail.test") for email in batch.customers.email)


def test_generate_pet_matches_rules() -> None:
    pet = generate_pet(np.random.default_rng(5), 41, 3)
    assert pet.pet_id == 41 * MAX_PETS_PER_CUSTOMER + 3
    assert pet.species in ("dog", "cat", "rabbit")
    assert pet.date_of_birth <= date(2025, 11, 2)
    again = generate_pet(np.random.default_rng(5), 41, 3)
    assert again == pet
    with pytest.raises(ValueError, match="pet index 8"):
        generate_pet(np.random.default_rng(5), 41, MAX_PETS_PER_CUSTOMER)
