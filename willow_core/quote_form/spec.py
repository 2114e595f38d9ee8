"""The quote form file: reading, checking and the parsed `FormSpec`.

The file format is described at the top of `default_form.toml`. Every problem is reported as a
`QuoteFormError` that names the file, the field and the reason, and nothing of a rejected file is
used.
"""

import hashlib
import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from pydantic_core import SchemaError, SchemaValidator, core_schema

from willow_core.errors import ConfigError
from willow_core.population.models import CUSTOMER_COLUMNS, PET_COLUMNS


class QuoteFormError(ConfigError):
    """A quote form file that cannot be read or breaks the file format."""

    title = "Invalid quote form"


DEFAULT_FORM_NAME = "default_form.toml"

SECTIONS = ("policyholder", "pet", "cover")
"""Form sections, in the order the form asks them."""

SECTION_TABLES = {"policyholder": "customers", "pet": "pets", "cover": "customers"}
"""The population table each section's fields are mapped from."""

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": CUSTOMER_COLUMNS,
    "pets": PET_COLUMNS,
}

RULES_BY_TYPE: dict[str, frozenset[str]] = {
    "text": frozenset({"pattern", "min_length", "max_length"}),
    "choice": frozenset({"allowed"}),
    "integer": frozenset({"min", "max"}),
    "decimal": frozenset({"min", "max"}),
    "date": frozenset(
        {
            "min_age_years",
            "max_age_years",
            "min_age_days",
            "not_in_future",
            "min_days_from_today",
            "max_days_from_today",
        }
    ),
    "boolean": frozenset(),
    "uk_postcode": frozenset(),
}
"""The rules each field type accepts."""

ALL_RULES = frozenset().union(*RULES_BY_TYPE.values())

BUILT_IN_RULES = frozenset({"required", "type", "uk_postcode", "required_if", "empty_unless"})
"""Rule names that failures can carry besides the `rules` keys."""

CROSS_FIELD_RULES = frozenset({"required_if", "empty_unless"})

_FIELD_KEYS = frozenset(
    {"name", "section", "label", "type", "required", "default", "rules", "messages", "help"}
)
_CROSS_KEYS = frozenset({"rule", "field", "when", "equals", "message"})


@dataclass(frozen=True)
class FieldSpec:
    """One question of the form."""

    name: str
    section: str
    label: str
    type: str
    required: bool
    rules: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    default: Any = None
    """Pre-filled answer used when the field has no mapping; "today" for a date means the
    validation day."""
    help: str | None = None


@dataclass(frozen=True)
class FieldSource:
    """Population columns that fill one field, joined with `join` when there are several."""

    columns: tuple[str, ...]
    """Qualified column names such as "customers.first_name"."""
    join: str = " "

    def describe(self) -> str:
        if len(self.columns) == 1:
            return self.columns[0]
        return f" {self.join.strip() or '+'} ".join(self.columns)


@dataclass(frozen=True)
class CrossFieldRule:
    """A rule that ties one field to another field of the same section."""

    rule: str
    field: str
    when: str
    equals: Any
    message: str


@dataclass(frozen=True)
class FormSpec:
    """A parsed, checked quote form file."""

    name: str
    version: int
    description: str
    path: Path
    fingerprint: str
    """SHA-256 of the file's bytes: validation results are tied to the exact file."""
    fields: tuple[FieldSpec, ...]
    mapping: dict[str, FieldSource]
    cross_field_rules: tuple[CrossFieldRule, ...]

    def field(self, name: str) -> FieldSpec:
        return next(spec for spec in self.fields if spec.name == name)

    def section_fields(self, section: str) -> tuple[FieldSpec, ...]:
        return tuple(spec for spec in self.fields if spec.section == section)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def uncovered(self) -> tuple[FieldSpec, ...]:
        """Fields with neither a population source nor a default."""
        return tuple(
            spec for spec in self.fields if spec.name not in self.mapping and spec.default is None
        )


def default_form_path() -> Path:
    """Return the path of the quote form shipped with Willow."""
    return Path(str(resources.files("willow_core.quote_form").joinpath(DEFAULT_FORM_NAME)))


def load_form_spec(path: Path | None = None) -> FormSpec:
    """Read and check a quote form file (the shipped default when `path` is None).

    Raises:
        QuoteFormError: the file is missing, is not valid TOML, or breaks the format; the message
            names the file, the field and the reason.
    """
    path = path or default_form_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise QuoteFormError(
            f"quote form {path} not found; fix [quote_form] path in config.toml"
        ) from None
    except OSError as error:
        raise QuoteFormError(f"quote form {path}: cannot read: {error.strerror}") from error
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise QuoteFormError(f"quote form {path}: invalid TOML: {error}") from error

    return parse_form_spec(data, path, hashlib.sha256(raw).hexdigest())


def parse_form_spec(data: dict[str, Any], path: Path, fingerprint: str = "") -> FormSpec:
    """Check already parsed form data; `path` names the source in errors.

    Raises:
        QuoteFormError: the data breaks the format.
    """
    checker = _Checker(path)
    form: Any = data.get("form")
    if not isinstance(form, dict):
        checker.fail("[form]", "missing; add a [form] table with name and version")
    name: Any = form.get("name")
    version: Any = form.get("version")
    if not isinstance(name, str) or not name.strip():
        checker.fail("[form] name", "missing or empty")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        checker.fail("[form] version", f"{version!r} is not a whole number of 1 or more")
    unknown_top = set(data) - {"form", "fields", "cross_field_rules", "mapping"}
    if unknown_top:
        checker.fail(f"[{sorted(unknown_top)[0]}]", "unknown table")

    raw_fields: Any = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        checker.fail("[[fields]]", "missing; the form needs at least one field")
    fields = tuple(checker.field(index, raw) for index, raw in enumerate(raw_fields))
    by_name: dict[str, FieldSpec] = {}
    for spec in fields:
        if spec.name in by_name:
            checker.fail(f"field {spec.name!r}", "defined twice; field names must be unique")
        by_name[spec.name] = spec

    raw_rules: Any = data.get("cross_field_rules", [])
    if not isinstance(raw_rules, list):
        checker.fail("[[cross_field_rules]]", "must be an array of tables")
    cross = tuple(checker.cross_rule(raw, by_name) for raw in raw_rules)

    raw_mapping: Any = data.get("mapping", {})
    if not isinstance(raw_mapping, dict):
        checker.fail("[mapping]", "must be a table of field = column")
    mapping = {name: checker.source(name, raw, by_name) for name, raw in raw_mapping.items()}

    return FormSpec(
        name=name.strip(),
        version=version,
        description=str(form.get("description", "")),
        path=path,
        fingerprint=fingerprint,
        fields=fields,
        mapping=mapping,
        cross_field_rules=cross,
    )


class _Checker:
    """Checks parts of a form file; every failure raises with the file and the place."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, reason: str) -> NoReturn:
        raise QuoteFormError(f"quote form {self.path}: {where}: {reason}")

    def field(self, index: int, raw: Any) -> FieldSpec:
        if not isinstance(raw, dict):
            self.fail(f"[[fields]] entry {index + 1}", "must be a table")
        name: Any = raw.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            self.fail(
                f"[[fields]] entry {index + 1}",
                f"name {name!r} must be a word of letters, digits and underscores",
            )
        where = f"field {name!r}"
        unknown = set(raw) - _FIELD_KEYS
        if unknown:
            self.fail(
                where,
                f"unknown key {sorted(unknown)[0]!r}; known keys: "
                + ", ".join(sorted(_FIELD_KEYS)),
            )

        section: Any = raw.get("section")
        if section not in SECTIONS:
            self.fail(where, f"section {section!r} must be one of {', '.join(SECTIONS)}")
        type_: Any = raw.get("type")
        if type_ not in RULES_BY_TYPE:
            self.fail(where, f"type {type_!r} must be one of {', '.join(RULES_BY_TYPE)}")
        label: Any = raw.get("label", name)
        if not isinstance(label, str):
            self.fail(where, f"label {label!r} must be text")
        required: Any = raw.get("required", False)
        if not isinstance(required, bool):
            self.fail(where, f"required = {required!r} must be true or false")

        rules: Any = raw.get("rules", {})
        if not isinstance(rules, dict):
            self.fail(where, "rules must be a table such as { max_length = 40 }")
        for rule, value in rules.items():
            self._rule(where, type_, rule, value)
        if type_ == "choice" and "allowed" not in rules:
            self.fail(where, "a choice field needs rules.allowed, the list of answers")

        messages: Any = raw.get("messages", {})
        if not isinstance(messages, dict):
            self.fail(where, "messages must be a table of rule = message")
        known_messages = set(rules) | BUILT_IN_RULES
        for rule, message in messages.items():
            if rule not in known_messages:
                self.fail(where, f"messages.{rule}: no rule {rule!r} on this field")
            if not isinstance(message, str):
                self.fail(where, f"messages.{rule} must be text")

        default: Any = raw.get("default")
        if default is not None:
            default = self._default(where, type_, rules, default)
        help_text: Any = raw.get("help")
        return FieldSpec(
            name=name,
            section=section,
            label=label,
            type=type_,
            required=required,
            rules=dict(rules),
            messages=dict(messages),
            default=default,
            help=help_text if isinstance(help_text, str) else None,
        )

    def _rule(self, where: str, type_: str, rule: str, value: Any) -> None:
        if rule not in ALL_RULES:
            self.fail(where, f"unknown rule {rule!r}; known rules: {', '.join(sorted(ALL_RULES))}")
        if rule not in RULES_BY_TYPE[type_]:
            accepted = ", ".join(sorted(RULES_BY_TYPE[type_])) or "none"
            self.fail(
                where, f"rule {rule!r} does not apply to a {type_} field (it accepts: {accepted})"
            )

        if rule == "pattern":
            if not isinstance(value, str):
                self.fail(where, f"rule pattern = {value!r} must be text")
            try:
                SchemaValidator(core_schema.str_schema(pattern=value))
            except SchemaError as error:
                reason = str(error).strip().splitlines()[-1].removeprefix("error: ")
                self.fail(
                    where, f"rule pattern {value!r} is not a valid regular expression: {reason}"
                )
        elif rule == "allowed":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(item, str) for item in value)
            ):
                self.fail(where, f"rule allowed = {value!r} must be a non-empty list of text")
        elif rule == "not_in_future":
            if not isinstance(value, bool):
                self.fail(where, f"rule not_in_future = {value!r} must be true or false")
        elif rule in ("min", "max"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(where, f"rule {rule} = {value!r} must be a number")
        else:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.fail(where, f"rule {rule} = {value!r} must be a whole number of 0 or more")

    def _default(self, where: str, type_: str, rules: dict[str, Any], default: Any) -> Any:
        if type_ == "date":
            if default == "today":
                return default
            if isinstance(default, date):
                return default
            self.fail(where, f'default {default!r} must be a date or "today"')
        if type_ == "boolean" and not isinstance(default, bool):
            self.fail(where, f"default {default!r} must be true or false")
        if type_ == "choice" and default not in rules.get("allowed", []):
            self.fail(where, f"default {default!r} is not one of rules.allowed")
        if type_ in ("integer", "decimal"):
            try:
                return Decimal(str(default)) if type_ == "decimal" else int(default)
            except (InvalidOperation, ValueError):
                self.fail(where, f"default {default!r} must be a number")
        if type_ in ("text", "uk_postcode") and not isinstance(default, str):
            self.fail(where, f"default {default!r} must be text")
        return default

    def cross_rule(self, raw: Any, fields: dict[str, FieldSpec]) -> CrossFieldRule:
        if not isinstance(raw, dict):
            self.fail("[[cross_field_rules]]", "each entry must be a table")
        target: Any = raw.get("field")
        where = f"cross-field rule on field {target!r}"
        unknown = set(raw) - _CROSS_KEYS
        if unknown:
            self.fail(where, f"unknown key {sorted(unknown)[0]!r}")

        rule: Any = raw.get("rule")
        if rule not in CROSS_FIELD_RULES:
            self.fail(
                where,
                f"unknown rule {rule!r}; known rules: " + ", ".join(sorted(CROSS_FIELD_RULES)),
            )
        if target not in fields:
            self.fail(where, "no such field in [[fields]]")
        when: Any = raw.get("when")
        if when not in fields:
            self.fail(where, f"when = {when!r} names no field in [[fields]]")
        if when == target:
            self.fail(where, "when names the field itself")
        if fields[when].section != fields[target].section:
            self.fail(
                where,
                f"{when!r} is in section {fields[when].section!r}; both fields "
                "of a cross-field rule must be in one section",
            )

        if "equals" not in raw:
            self.fail(where, "missing equals, the value of `when` that triggers the rule")
        when_field = fields[when]
        equals = raw["equals"]
        if when_field.type == "boolean" and not isinstance(equals, bool):
            self.fail(where, f"equals = {equals!r} must be true or false, as {when!r} is a boolean")
        if when_field.type == "choice" and equals not in when_field.rules["allowed"]:
            self.fail(where, f"equals = {equals!r} is not one of {when!r}'s allowed answers")
        if fields[target].required:
            self.fail(where, f"{rule} needs an optional field, but {target!r} is required")

        default_message = (
            f"required when {fields[when].label} is {raw['equals']!r}"
            if rule == "required_if"
            else f"must be blank unless {fields[when].label} is {raw['equals']!r}"
        )
        return CrossFieldRule(
            rule=rule,
            field=target,
            when=when,
            equals=raw["equals"],
            message=str(raw.get("message", default_message)),
        )

    def source(self, name: str, raw: Any, fields: dict[str, FieldSpec]) -> FieldSource:
        where = f"[mapping] {name}"
        if name not in fields:
            self.fail(where, "no such field in [[fields]]")
        columns: Any
        join: Any
        if isinstance(raw, str):
            columns = [raw]
            join = " "
        elif isinstance(raw, dict):
            unknown = set(raw) - {"columns", "join"}
            if unknown:
                self.fail(where, f"unknown key {sorted(unknown)[0]!r}; use columns and join")
            columns = raw.get("columns")
            join = raw.get("join", " ")
            if not isinstance(join, str):
                self.fail(where, f"join = {join!r} must be text")
        else:
            self.fail(where, 'must be a column name or { columns = [...], join = " " }')
        if not isinstance(columns, list) or not columns:
            self.fail(where, "columns must be a non-empty list of column names")

        table = SECTION_TABLES[fields[name].section]
        for column in columns:
            if not isinstance(column, str) or "." not in column:
                self.fail(where, f"{column!r} must be written table.column, as in {table}.email")
            column_table, column_name = column.split(".", 1)
            if column_table != table:
                self.fail(
                    where, f"{column!r}: {fields[name].section} fields read the {table} table"
                )
            if column_name not in TABLE_COLUMNS[table]:
                self.fail(
                    where,
                    f"{column!r}: the {table} table has no column "
                    f"{column_name!r}; columns: {', '.join(TABLE_COLUMNS[table])}",
                )
        if len(columns) > 1 and fields[name].type not in ("text", "uk_postcode"):
            self.fail(where, "only text fields can join several columns")
        return FieldSource(columns=tuple(columns), join=join)
