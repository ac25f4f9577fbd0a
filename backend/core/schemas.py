"""Pydantic building blocks shared by every domain's schemas: camelCase JSON, addresses and
integer amounts that travel as strings (never floats)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from backend.core.security import checksum_address

MAX_UINT256 = 2**256 - 1
# Integers are bounded where they enter, by the column (and contract) they end up in, so an
# out-of-range value is a 422 naming the field, never an overflow in the database driver.
MAX_INT32 = 2**31 - 1  # Integer primary keys (courses, lessons, certificates)
MAX_INT64 = 2**63 - 1  # BigInteger columns (on-chain course ids, ledger ids)

# The id of a row with an Integer primary key (a course).
RowId = Annotated[int, Field(ge=1, le=MAX_INT32)]
# An on-chain course id: below 2**96 in the contracts, stored as a BigInteger.
OnchainCourseId = Annotated[int, Field(ge=1, le=MAX_INT64)]

# Path parameters, bounded where they enter (a router never imports another router for them).
CourseId = Annotated[int, Path(ge=1, le=MAX_INT32, description="The course's id")]
LessonNumber = Annotated[int, Path(ge=1, le=10_000, description="Lesson position, from 1")]
OrderId = Annotated[str, Path(min_length=1, max_length=36, description="The order's id")]
CertificateId = Annotated[int, Path(ge=1, le=MAX_INT32, description="The certificate's id")]


class ApiModel(BaseModel):
    """Base of response bodies: camelCase JSON, built from ORM objects or dicts."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class ApiInput(BaseModel):
    """Base of request bodies: camelCase JSON, unknown fields rejected (typos get an error)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _parse_address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("an address is a 0x-prefixed hex string")
    return checksum_address(value)


def _parse_amount(value: Any) -> int:
    # Floats (and bools, which are ints in Python) are refused: money is integer base units.
    if isinstance(value, bool | float):
        raise ValueError("amounts are integers in base units, sent as strings")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        number = int(value)
    else:
        raise ValueError('amounts are non-negative integers in base units, e.g. "1000000"')
    if not 0 <= number <= MAX_UINT256:
        raise ValueError("amount out of range (0 .. 2**256-1)")
    return number


# An EIP-55 checksummed address; lower/upper-case input is accepted and checksummed, mixed case
# must already be a valid checksum.
AddressStr = Annotated[
    str,
    BeforeValidator(_parse_address),
    WithJsonSchema(
        {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "example": "0x" + "ab" * 20}
    ),
]

# An integer in base units; JSON carries it as a decimal string.
Amount = Annotated[
    int,
    BeforeValidator(_parse_amount),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]+$", "example": "1000000"}),
]


T = TypeVar("T")


class Page(ApiModel, Generic[T]):
    """A page of results with the cursor of the next page (null at the end)."""

    items: list[T]
    next_cursor: str | None = None
