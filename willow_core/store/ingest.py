"""COPY of generated batches into the population tables.

A batch arrives as columns; each column is turned into COPY text in one pass (NumPy formats the
dates and numbers, the strings are already final) and the rows are joined into one buffer that
is sent with a single write. The reference tables contain no tab, newline or backslash, so no
value needs escaping. `bench/bench_generation.py` measures this against psycopg's binary COPY
of the same rows: the text buffer is faster end to end, because building binary rows costs more
in Python than PostgreSQL saves in parsing text.
"""

from collections.abc import Sequence
from datetime import UTC
from typing import Any, LiteralString

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from willow_core.population.models import (
    CUSTOMER_COLUMNS,
    PET_COLUMNS,
    CustomerColumns,
    GeneratedBatch,
    PetColumns,
)

NULL = "\\N"
"""COPY text's marker for NULL."""


def _copy_statement(
    table: LiteralString, columns: tuple[str, ...], binary: bool = False
) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(" (FORMAT BINARY)" if binary else ""),
    )


_CUSTOMER_TARGET = (*CUSTOMER_COLUMNS, "run_id", "batch_index")
_COPY_CUSTOMERS = _copy_statement("customers", _CUSTOMER_TARGET)
_COPY_PETS = _copy_statement("pets", PET_COLUMNS)
_COPY_CUSTOMERS_BINARY = _copy_statement("customers", _CUSTOMER_TARGET, binary=True)
_COPY_PETS_BINARY = _copy_statement("pets", PET_COLUMNS, binary=True)

_CUSTOMER_TYPES = (
    "int8", "text", "text", "text", "date", "text", "text", "text", "text", "text", "text",
    "timestamptz", "text", "text", "int4", "int4",
)  # fmt: skip
_PET_TYPES = (
    "int8", "int8", "text", "text", "text", "text", "date", "bool", "text", "bool", "text",
)  # fmt: skip


def copy_batch(
    conn: psycopg.Connection, batch: GeneratedBatch, run_id: int, batch_index: int
) -> None:
    """Write a generated batch with COPY (text format) inside the caller's transaction."""
    with conn.cursor() as cursor:
        with cursor.copy(_COPY_CUSTOMERS) as copy:
            copy.write(customers_copy_text(batch.customers, run_id, batch_index))
        if len(batch.pets):
            with cursor.copy(_COPY_PETS) as copy:
                copy.write(pets_copy_text(batch.pets))


def copy_batch_binary(
    conn: psycopg.Connection, batch: GeneratedBatch, run_id: int, batch_index: int
) -> None:
    """Write a generated batch with binary COPY, row by row through psycopg's dumpers.

    Kept for the benchmark that compares it with `copy_batch`.
    """
    customers, pets = batch
    with conn.cursor() as cursor:
        with cursor.copy(_COPY_CUSTOMERS_BINARY) as copy:
            copy.set_types(list(_CUSTOMER_TYPES))
            columns = _python_columns(customers)
            runs = [run_id] * len(customers)
            batches = [batch_index] * len(customers)
            for row in zip(*columns, runs, batches, strict=True):
                copy.write_row(row)
        if len(pets):
            with cursor.copy(_COPY_PETS_BINARY) as copy:
                copy.set_types(list(_PET_TYPES))
                for row in zip(*_python_columns(pets), strict=True):
                    copy.write_row(row)


def customers_copy_text(customers: CustomerColumns, run_id: int, batch_index: int) -> bytes:
    """Return the customers as COPY text rows, in `CUSTOMER_COLUMNS` order plus run and batch."""
    columns = [
        _numbers(customers.customer_id),
        customers.title.tolist(),
        customers.first_name.tolist(),
        customers.last_name.tolist(),
        _days(customers.date_of_birth),
        customers.email.tolist(),
        customers.phone.tolist(),
        customers.address_line1.tolist(),
        _nullable(customers.address_line2),
        customers.town.tolist(),
        customers.postcode.tolist(),
        _moments(customers.created_at),
        _nullable(customers.county),
        _nullable(customers.sex),
    ]
    suffix = f"\t{run_id}\t{batch_index}\n"
    return _join(columns, suffix)


def pets_copy_text(pets: PetColumns) -> bytes:
    """Return the pets as COPY text rows, in `PET_COLUMNS` order."""
    columns = [
        _numbers(pets.pet_id),
        _numbers(pets.customer_id),
        pets.name.tolist(),
        pets.species.tolist(),
        pets.breed.tolist(),
        pets.sex.tolist(),
        _days(pets.date_of_birth),
        _booleans(pets.microchipped),
        _nullable(pets.microchip_number),
        _booleans(pets.neutered),
        _nullable(pets.pre_existing_conditions),
    ]
    return _join(columns, "\n")


def _join(columns: Sequence[list[str]], suffix: str) -> bytes:
    rows = map("\t".join, zip(*columns, strict=True))
    return (suffix.join(rows) + suffix).encode() if columns[0] else b""


def _numbers(values: npt.NDArray[np.int64]) -> list[str]:
    return list(map(str, values.tolist()))


def _days(values: npt.NDArray[np.datetime64]) -> list[str]:
    strings: list[str] = np.datetime_as_string(values, unit="D").tolist()
    return strings


def _moments(values: npt.NDArray[np.datetime64]) -> list[str]:
    strings: list[str] = np.datetime_as_string(values, unit="s", timezone="UTC").tolist()
    return strings


def _booleans(values: npt.NDArray[np.bool_]) -> list[str]:
    return ["t" if value else "f" for value in values.tolist()]


def _nullable(values: npt.NDArray[np.object_]) -> list[str]:
    return [NULL if value is None else value for value in values.tolist()]


def _python_columns(columns: CustomerColumns | PetColumns) -> list[list[Any]]:
    """Return each column as a list of Python values (dates, aware datetimes, ints, str)."""
    result: list[list[Any]] = []
    for array in columns._arrays():
        if array.dtype == np.dtype("datetime64[s]"):
            result.append([moment.replace(tzinfo=UTC) for moment in array.astype(object).tolist()])
        else:
            result.append(array.tolist())
    return result
