"""Compile a `FormSpec` into pydantic models and validate NPCs against them.

Each section becomes a pydantic model whose fields carry the form's rules as pydantic constraints,
so most checks run inside pydantic-core without calling back into Python. Date rules count from
the validation day (`as_of`) and become plain `ge`/`le` bounds, so a compiled form belongs to one
day. Postcodes and cross-field rules are Python validators on their fields.

Each NPC's answers go through the model's pydantic-core validator, and pydantic's errors are
translated into `Failure`s that name the form's own field and rule and carry the form's message.
"""

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    create_model,
)
from pydantic_core import ErrorDetails, PydanticCustomError, SchemaError

from willow_core.quote_form.postcode import normalise_postcode, postcode_problem
from willow_core.quote_form.spec import (
    SECTIONS,
    CrossFieldRule,
    FieldSpec,
    FormSpec,
    QuoteFormError,
)

Row = Sequence[Any]

_DEFAULT_MESSAGES = {
    "required": "{label} is required",
    "pattern": "{label} does not match the pattern {limit}",
    "min_length": "{label} must be at least {limit} characters; it has {length}",
    "max_length": "{label} must be at most {limit} characters; it has {length}",
    "allowed": "{label} must be one of: {limit}",
    "min": "{label} must be at least {limit}",
    "max": "{label} must be at most {limit}",
    "min_age_years": "born {value}, so under {limit} years old",
    "max_age_years": "born {value}, so over {limit} years old",
    "min_age_days": "born {value}, so under {limit} days old",
    "not_in_future": "{value} is in the future",
    "min_days_from_today": "{value} is less than {limit} days from the validation day",
    "max_days_from_today": "{value} is more than {limit} days from the validation day",
}
_MESSAGE_FROM_VALIDATOR = frozenset({"uk_postcode", "required_if", "empty_unless"})
_NO_SOURCE_MESSAGE = "{label} is required, but no population column maps to it"


@dataclass(frozen=True)
class Failure:
    """One field of one NPC that fails one rule."""

    section: str
    pet_index: int | None
    """Position of the pet in the NPC's pets (pet section only)."""
    field: str
    rule: str
    value: Any
    """The answer as mapped from the population, before any normalisation."""
    message: str


@dataclass(frozen=True)
class _FieldPlan:
    """The compiled view of one field: its spec, and the form's rule name for each pydantic error
    type it can raise."""

    spec: FieldSpec
    rule_by_error: dict[str, str]
    limits: dict[str, str]
    rendered: dict[tuple[str, str], str] = field(default_factory=dict)
    """Message templates with label and limit filled in, by (rule, template)."""


def years_before(day: date, years: int) -> date:
    """Return the same calendar day `years` earlier; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


class CompiledForm:
    """A quote form compiled for one validation day."""

    def __init__(self, spec: FormSpec, as_of: date) -> None:
        """Build the section models.

        Raises:
            QuoteFormError: pydantic rejected a rule (the message names the file and field).
        """
        self.spec = spec
        self.as_of = as_of
        self._plans: dict[str, _FieldPlan] = {}
        cross_by_field: dict[str, list[CrossFieldRule]] = {}
        for cross in spec.cross_field_rules:
            cross_by_field.setdefault(cross.field, []).append(cross)

        section_models: dict[str, type[BaseModel]] = {}
        for section in SECTIONS:
            fields = _ordered_for_cross_rules(spec, spec.section_fields(section))
            if not fields:
                continue
            definitions: dict[str, Any] = {}
            for field_spec in fields:
                annotation, plan = self._compile_field(
                    field_spec, cross_by_field.get(field_spec.name, [])
                )
                self._plans[field_spec.name] = plan
                default: Any = ... if field_spec.required else None
                definitions[field_spec.name] = (annotation, default)
            try:
                section_models[section] = create_model(
                    f"{section.title()}Answers",
                    __config__=ConfigDict(extra="forbid", frozen=True),
                    **definitions,
                )
            except (SchemaError, TypeError, ValueError) as error:
                raise QuoteFormError(
                    f"quote form {spec.path}: section {section!r}: {error}"
                ) from error
        self.section_models = section_models

        top: dict[str, Any] = {}
        for section, model in section_models.items():
            if section == "pet":
                top["pets"] = (list[model], [])  # type: ignore[valid-type]
            else:
                top[section] = (model, ...)
        self.model: type[BaseModel] = create_model(
            "QuoteFormAnswers", __config__=ConfigDict(extra="forbid", frozen=True), **top
        )
        self._validator = self.model.__pydantic_validator__

        self.customer_columns = _columns_of(spec, ("policyholder", "cover"))
        """Columns of `customers` the mapping reads, in the order `customer_row` expects."""
        self.pet_columns = _columns_of(spec, ("pet",))
        """Columns of `pets` the mapping reads, in the order `pet_row` expects."""
        self._customer_readers = self._readers(("policyholder", "cover"), self.customer_columns)
        self._pet_readers = self._readers(("pet",), self.pet_columns)

    # Compiling fields

    def _compile_field(
        self, spec: FieldSpec, cross_rules: list[CrossFieldRule]
    ) -> tuple[Any, _FieldPlan]:
        rules = spec.rules
        rule_by_error: dict[str, str] = {}
        limits: dict[str, str] = {}
        annotation: Any

        if spec.type == "text":
            min_length = rules.get("min_length")
            if spec.required:
                min_length = max(1, min_length or 0)
            annotation = Annotated[
                str,
                StringConstraints(
                    strip_whitespace=True,
                    min_length=min_length,
                    max_length=rules.get("max_length"),
                    pattern=rules.get("pattern"),
                ),
            ]
            rule_by_error = {
                "string_pattern_mismatch": "pattern",
                "string_too_short": "min_length",
                "string_too_long": "max_length",
            }
            limits = {
                name: str(rules[name])
                for name in ("pattern", "min_length", "max_length")
                if name in rules
            }
        elif spec.type == "uk_postcode":
            annotation = Annotated[
                str,
                StringConstraints(min_length=1 if spec.required else None),
                BeforeValidator(_normalise_if_text),
                AfterValidator(_check_postcode),
            ]
            rule_by_error = {"uk_postcode": "uk_postcode"}
        elif spec.type == "choice":
            allowed = tuple(rules["allowed"])
            annotation = Literal[allowed]
            rule_by_error = {"literal_error": "allowed"}
            limits = {"allowed": ", ".join(allowed)}
        elif spec.type in ("integer", "decimal"):
            base: type = int if spec.type == "integer" else Decimal
            annotation = Annotated[base, Field(ge=rules.get("min"), le=rules.get("max"))]
            rule_by_error = {"greater_than_equal": "min", "less_than_equal": "max"}
            limits = {name: str(rules[name]) for name in ("min", "max") if name in rules}
        elif spec.type == "date":
            lower, lower_rule, upper, upper_rule = self._date_bounds(rules)
            annotation = Annotated[date, Field(ge=lower, le=upper)]
            if lower_rule:
                rule_by_error["greater_than_equal"] = lower_rule
            if upper_rule:
                rule_by_error["less_than_equal"] = upper_rule
            limits = {name: str(value) for name, value in rules.items()}
        else:
            annotation = bool

        if not spec.required:
            annotation = annotation | None
        for cross in cross_rules:
            annotation = Annotated[annotation, AfterValidator(_cross_field_check(cross))]
            rule_by_error[cross.rule] = cross.rule
        return annotation, _FieldPlan(spec, rule_by_error, limits)

    def _date_bounds(
        self, rules: Mapping[str, Any]
    ) -> tuple[date | None, str | None, date | None, str | None]:
        uppers: list[tuple[date, str]] = []
        lowers: list[tuple[date, str]] = []
        if "min_age_years" in rules:
            uppers.append((years_before(self.as_of, rules["min_age_years"]), "min_age_years"))
        if "min_age_days" in rules:
            uppers.append((self.as_of - timedelta(days=rules["min_age_days"]), "min_age_days"))
        if rules.get("not_in_future"):
            uppers.append((self.as_of, "not_in_future"))
        if "max_days_from_today" in rules:
            uppers.append(
                (self.as_of + timedelta(days=rules["max_days_from_today"]), "max_days_from_today")
            )
        if "max_age_years" in rules:
            oldest = years_before(self.as_of, rules["max_age_years"] + 1) + timedelta(days=1)
            lowers.append((oldest, "max_age_years"))
        if "min_days_from_today" in rules:
            lowers.append(
                (self.as_of + timedelta(days=rules["min_days_from_today"]), "min_days_from_today")
            )
        upper = min(uppers, default=None, key=operator.itemgetter(0))
        lower = max(lowers, default=None, key=operator.itemgetter(0))
        return (
            lower[0] if lower else None,
            lower[1] if lower else None,
            upper[0] if upper else None,
            upper[1] if upper else None,
        )

    # Mapping population rows to answers

    def _readers(
        self, sections: tuple[str, ...], columns: tuple[str, ...]
    ) -> dict[str, "_SectionReader"]:
        position = {column: index for index, column in enumerate(columns)}
        readers: dict[str, _SectionReader] = {}
        for section in sections:
            if section not in self.section_models:
                continue
            direct: list[tuple[str, int]] = []
            computed: list[tuple[str, Callable[[Row], Any]]] = []
            for spec in self.spec.section_fields(section):
                source = self.spec.mapping.get(spec.name)
                if source is None:
                    default = spec.default
                    if default is None:
                        continue  # no source: the key stays absent
                    value = self.as_of if default == "today" else default
                    computed.append((spec.name, _constant(value)))
                    continue
                indices = tuple(position[column.split(".", 1)[1]] for column in source.columns)
                if len(indices) == 1 and spec.required:
                    direct.append((spec.name, indices[0]))
                else:
                    reader = _column_reader(indices, source.join, blank_is_none=not spec.required)
                    computed.append((spec.name, reader))
            readers[section] = _SectionReader(direct, computed)
        return readers

    def answers(self, customer: Row, pets: Sequence[Row]) -> dict[str, Any]:
        """Return the form's input for one NPC.

        Args:
            customer: values of `customer_columns`, in that order.
            pets: for each pet, values of `pet_columns`, in that order.
        """
        answers: dict[str, Any] = {
            section: reader.read(customer) for section, reader in self._customer_readers.items()
        }
        pet_reader = self._pet_readers.get("pet")
        if pet_reader is not None:
            answers["pets"] = [pet_reader.read(pet) for pet in pets]
        return answers

    # Validation

    def validate_one(self, answers: dict[str, Any]) -> list[Failure]:
        """Validate one NPC's answers with the model's pydantic-core validator; return its
        failures."""
        try:
            self._validator.validate_python(answers)
        except ValidationError as error:
            return [
                self._failure(detail, detail["loc"], answers)
                for detail in error.errors(include_url=False)
            ]
        return []

    def validate_many(self, inputs: list[dict[str, Any]]) -> list[list[Failure]]:
        """Validate many NPCs' answers; return each NPC's failures, in input order.

        Each NPC is validated on its own and its model instance dropped at once. One
        `TypeAdapter(list[...])` call over a chunk keeps every instance alive until the end,
        which makes Python's cyclic garbage collector rescan them again and again: 2 to 3 times
        slower on chunks of 5,000 NPCs on the benchmark machine.
        """
        return [self.validate_one(answers) for answers in inputs]

    def _failure(
        self, detail: ErrorDetails, loc: tuple[int | str, ...], answers: dict[str, Any]
    ) -> Failure:
        section = str(loc[0])
        pet_index: int | None = None
        if section == "pets":
            section = "pet"
            if len(loc) < 3:
                return Failure("pet", None, "pets", "type", None, detail["msg"])
            pet_index = int(loc[1])
            field_name = str(loc[2])
            given = answers["pets"][pet_index]
        else:
            if len(loc) < 2:
                return Failure(section, None, section, "type", None, detail["msg"])
            field_name = str(loc[1])
            given = answers[section]
        value = given.get(field_name)

        plan = self._plans[field_name]
        error_type = detail["type"]
        if error_type == "missing":
            rule = "required"
            template = plan.spec.messages.get("required", _NO_SOURCE_MESSAGE)
        elif error_type in _MESSAGE_FROM_VALIDATOR:
            # Postcode and cross-field validators word their own messages, which can differ
            # for every value, so those are not cached.
            rule = error_type
            override = plan.spec.messages.get(rule)
            template = override or detail["msg"]
            message = _render(template, plan, rule, value, cache=override is not None)
            return Failure(section, pet_index, field_name, rule, value, message)
        elif value is None or (isinstance(value, str) and not value.strip()):
            rule = "required"
            template = plan.spec.messages.get("required", _DEFAULT_MESSAGES["required"])
        else:
            rule = plan.rule_by_error.get(error_type, "type")
            template = plan.spec.messages.get(rule, _DEFAULT_MESSAGES.get(rule) or detail["msg"])
        message = _render(template, plan, rule, value, cache=True)
        return Failure(section, pet_index, field_name, rule, value, message)


def _render(template: str, plan: _FieldPlan, rule: str, value: Any, *, cache: bool) -> str:
    """Fill a message template's {label}, {limit}, {value} and {length}.

    Label and limit depend only on the field and rule, so with `cache` that part is kept per
    template: a population with a common fault renders the same template millions of times.
    """
    fixed = plan.rendered.get((rule, template)) if cache else None
    if fixed is None:
        fixed = template.replace("{label}", plan.spec.label).replace(
            "{limit}", plan.limits.get(rule, "")
        )
        if cache:
            plan.rendered[(rule, template)] = fixed
    if "{value}" not in fixed and "{length}" not in fixed:
        return fixed
    if value is None:
        shown = ""
    elif isinstance(value, date):
        shown = value.isoformat()
    else:
        shown = str(value)
    return fixed.replace("{value}", shown).replace("{length}", str(len(shown)))


def _ordered_for_cross_rules(spec: FormSpec, fields: tuple[FieldSpec, ...]) -> list[FieldSpec]:
    """Order fields so that every cross-field rule's `when` field is validated before its target,
    because the target's validator reads the `when` value from the fields validated so far."""
    depends_on: dict[str, set[str]] = {field.name: set() for field in fields}
    for cross in spec.cross_field_rules:
        if cross.field in depends_on:
            depends_on[cross.field].add(cross.when)
    ordered: list[FieldSpec] = []
    placed: set[str] = set()
    while len(ordered) < len(fields):
        ready = [f for f in fields if f.name not in placed and depends_on[f.name] <= placed]
        if not ready:
            stuck = sorted(name for name in depends_on if name not in placed)
            raise QuoteFormError(
                f"quote form {spec.path}: cross-field rules between {', '.join(stuck)} form a "
                "cycle; remove one of them"
            )
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return ordered


def _columns_of(spec: FormSpec, sections: tuple[str, ...]) -> tuple[str, ...]:
    columns: list[str] = []
    for field_spec in spec.fields:
        source = spec.mapping.get(field_spec.name)
        if field_spec.section not in sections or source is None:
            continue
        for qualified in source.columns:
            column = qualified.split(".", 1)[1]
            if column not in columns:
                columns.append(column)
    return tuple(columns)


class _SectionReader:
    """Builds one section's answers from a row: plain columns in one C-level step, then the
    joined, optional and default answers."""

    def __init__(
        self, direct: list[tuple[str, int]], computed: list[tuple[str, Callable[[Row], Any]]]
    ) -> None:
        self._names = tuple(name for name, _ in direct)
        self._computed = tuple(computed)
        self._get: Callable[[Row], tuple[Any, ...]]
        if not direct:
            self._get = lambda row: ()
        elif len(direct) == 1:
            index = direct[0][1]
            self._get = lambda row: (row[index],)
        else:
            self._get = operator.itemgetter(*(index for _, index in direct))

    def read(self, row: Row) -> dict[str, Any]:
        answers = dict(zip(self._names, self._get(row), strict=True))
        for name, read in self._computed:
            answers[name] = read(row)
        return answers


def _constant(value: Any) -> Callable[[Row], Any]:
    return lambda row: value


def _column_reader(
    indices: tuple[int, ...], join: str, *, blank_is_none: bool
) -> Callable[[Row], Any]:
    if len(indices) == 1:
        (index,) = indices
        if not blank_is_none:
            return operator.itemgetter(index)

        def read_optional(row: Row) -> Any:
            value = row[index]
            if isinstance(value, str) and not value.strip():
                return None
            return value

        return read_optional

    get = operator.itemgetter(*indices)

    def read_joined(row: Row) -> Any:
        parts = [
            value if isinstance(value, str) else str(value)
            for value in get(row)
            if value is not None and value != ""
        ]
        if not parts:
            return None if blank_is_none else ""
        return join.join(parts)

    return read_joined


def _normalise_if_text(value: Any) -> Any:
    if isinstance(value, str):
        return normalise_postcode(value)
    return value


def _check_postcode(value: str) -> str:
    if not value:
        return value  # blank: the required check reports it
    problem = postcode_problem(value)
    if problem is not None:
        raise PydanticCustomError("uk_postcode", problem.replace("{", "{{").replace("}", "}}"))
    return value


def _cross_field_check(cross: CrossFieldRule) -> Callable[[Any, ValidationInfo], Any]:
    message = cross.message.replace("{", "{{").replace("}", "}}")

    def check(value: Any, info: ValidationInfo) -> Any:
        if cross.when not in info.data:
            return value  # the `when` field failed its own checks; that failure is reported
        triggered = info.data[cross.when] == cross.equals
        blank = value is None or (isinstance(value, str) and not value.strip())
        if cross.rule == "required_if" and triggered and blank:
            raise PydanticCustomError("required_if", message)
        if cross.rule == "empty_unless" and not triggered and not blank:
            raise PydanticCustomError("empty_unless", message)
        return value

    return check
