"""COPY of generated batches into the population tables."""

from typing import LiteralString

import psycopg
from psycopg import sql

from willow_core.population.models import CUSTOMER_COLUMNS, PET_COLUMNS, GeneratedBatch


def _copy_statement(table: LiteralString, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


_COPY_CUSTOMERS = _copy_statement("customers", (*CUSTOMER_COLUMNS, "run_id", "batch_index"))
_COPY_PETS = _copy_statement("pets", PET_COLUMNS)


def copy_batch(
    conn: psycopg.Connection, batch: GeneratedBatch, run_id: int, batch_index: int
) -> None:
    """Write a generated batch with COPY inside the caller's transaction."""
    with conn.cursor() as cursor:
        with cursor.copy(_COPY_CUSTOMERS) as copy:
            for customer in batch.customers:
                copy.write_row((*customer, run_id, batch_index))
        with cursor.copy(_COPY_PETS) as copy:
            for pet in batch.pets:
                copy.write_row(pet)
