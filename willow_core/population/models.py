"""Rows of the population tables, in the column order used by COPY."""

from datetime import date, datetime
from typing import NamedTuple


class CustomerRow(NamedTuple):
    customer_id: int
    title: str
    first_name: str
    last_name: str
    date_of_birth: date
    email: str
    phone: str
    address_line1: str
    address_line2: str | None
    town: str
    postcode: str
    created_at: datetime


class PetRow(NamedTuple):
    pet_id: int
    customer_id: int
    name: str
    species: str
    breed: str
    sex: str
    date_of_birth: date
    microchipped: bool
    microchip_number: str | None
    neutered: bool


CUSTOMER_COLUMNS: tuple[str, ...] = CustomerRow._fields
PET_COLUMNS: tuple[str, ...] = PetRow._fields

MAX_PETS_PER_CUSTOMER = 8
"""Pet ids are `customer_id * MAX_PETS_PER_CUSTOMER + j`, so they are unique and deterministic."""


class GeneratedBatch(NamedTuple):
    customers: list[CustomerRow]
    pets: list[PetRow]
