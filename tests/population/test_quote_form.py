"""Every generated NPC passes the default quote form."""

from collections import defaultdict
from datetime import date

from willow_core.population.report import PopulationSample
from willow_core.quote_form.compiler import CompiledForm
from willow_core.quote_form.spec import load_form_spec


def test_sample_passes_default_form(sample: PopulationSample) -> None:
    form = CompiledForm(load_form_spec(), as_of=date.today())
    customers, pets = sample.customers, sample.pets
    pet_rows = defaultdict(list)
    pet_columns = [pets[column] for column in form.pet_columns]
    for owner, *values in zip(
        pets["customer_id"].tolist(), *[c.tolist() for c in pet_columns], strict=True
    ):
        pet_rows[owner].append(values)
    customer_columns = [customers[column].tolist() for column in form.customer_columns]

    answers = [
        form.answers(values, pet_rows.get(customer_id, []))
        for customer_id, *values in zip(
            customers["customer_id"].tolist(), *customer_columns, strict=True
        )
    ]
    failures = form.validate_many(answers)

    failed = [(i, found) for i, found in enumerate(failures) if found]
    assert len(answers) == 100_000
    assert sum(len(answer.get("pets", [])) for answer in answers) == len(pets["pet_id"])
    assert failed[:5] == []
