"""Rows of the population tables, and generated batches held as columns.

A batch is generated and written column by column (NumPy arrays and lists of strings), which is
what makes generation and COPY fast. `CustomerColumns` and `PetColumns` are also read-only
sequences of `CustomerRow` and `PetRow`, so code that handles one NPC at a time can index and
iterate a batch as before.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, overload

import numpy as np
import numpy.typing as npt


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
    county: str | None = None
    sex: str | None = None
    """"female" or "male"; None for rows written before the column existed."""


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
    pre_existing_conditions: str | None = None


CUSTOMER_COLUMNS: tuple[str, ...] = CustomerRow._fields
PET_COLUMNS: tuple[str, ...] = PetRow._fields

MAX_PETS_PER_CUSTOMER = 8
"""Pet ids are `customer_id * MAX_PETS_PER_CUSTOMER + j`, so they are unique and deterministic."""

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
DateArray = npt.NDArray[np.datetime64]
ObjectArray = npt.NDArray[np.object_]
"""Strings (or None) in a NumPy object array."""

_EPOCH = np.datetime64("1970-01-01", "D")


def _to_date(day: np.datetime64) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + int((day - _EPOCH).astype(int)))


def _to_datetime(moment: np.datetime64) -> datetime:
    seconds = int(moment.astype("datetime64[s]").astype(np.int64))
    return datetime.fromtimestamp(seconds, UTC)


class _Columns:
    """Equality and length shared by the column classes: equal when every column is equal."""

    def _arrays(self) -> list[npt.NDArray[Any]]:
        return [getattr(self, field.name) for field in fields(self)]  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._arrays()[0])

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Columns)
        return all(
            mine.shape == theirs.shape and bool(np.all(mine == theirs))
            for mine, theirs in zip(self._arrays(), other._arrays(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class CustomerColumns(_Columns, Sequence[CustomerRow]):
    """A batch's customers as columns, in customer id order."""

    customer_id: IntArray
    title: ObjectArray
    first_name: ObjectArray
    last_name: ObjectArray
    date_of_birth: DateArray
    """datetime64[D]."""
    email: ObjectArray
    phone: ObjectArray
    address_line1: ObjectArray
    address_line2: ObjectArray
    town: ObjectArray
    postcode: ObjectArray
    created_at: DateArray
    """datetime64[s], UTC."""
    county: ObjectArray
    sex: ObjectArray

    @overload
    def __getitem__(self, index: int) -> CustomerRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[CustomerRow]: ...

    def __getitem__(self, index: int | slice) -> CustomerRow | Sequence[CustomerRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return CustomerRow(
            customer_id=int(self.customer_id[index]),
            title=self.title[index],
            first_name=self.first_name[index],
            last_name=self.last_name[index],
            date_of_birth=_to_date(self.date_of_birth[index]),
            email=self.email[index],
            phone=self.phone[index],
            address_line1=self.address_line1[index],
            address_line2=self.address_line2[index],
            town=self.town[index],
            postcode=self.postcode[index],
            created_at=_to_datetime(self.created_at[index]),
            county=self.county[index],
            sex=self.sex[index],
        )

    def __iter__(self) -> Iterator[CustomerRow]:
        return (self[i] for i in range(len(self)))


@dataclass(frozen=True, eq=False)
class PetColumns(_Columns, Sequence[PetRow]):
    """A batch's pets as columns, in pet id order."""

    pet_id: IntArray
    customer_id: IntArray
    name: ObjectArray
    species: ObjectArray
    breed: ObjectArray
    sex: ObjectArray
    date_of_birth: DateArray
    """datetime64[D]."""
    microchipped: BoolArray
    microchip_number: ObjectArray
    neutered: BoolArray
    pre_existing_conditions: ObjectArray

    @overload
    def __getitem__(self, index: int) -> PetRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[PetRow]: ...

    def __getitem__(self, index: int | slice) -> PetRow | Sequence[PetRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return PetRow(
            pet_id=int(self.pet_id[index]),
            customer_id=int(self.customer_id[index]),
            name=self.name[index],
            species=self.species[index],
            breed=self.breed[index],
            sex=self.sex[index],
            date_of_birth=_to_date(self.date_of_birth[index]),
            microchipped=bool(self.microchipped[index]),
            microchip_number=self.microchip_number[index],
            neutered=bool(self.neutered[index]),
            pre_existing_conditions=self.pre_existing_conditions[index],
        )

    def __iter__(self) -> Iterator[PetRow]:
        return (self[i] for i in range(len(self)))


class GeneratedBatch(NamedTuple):
    customers: CustomerColumns
    pets: PetColumns
