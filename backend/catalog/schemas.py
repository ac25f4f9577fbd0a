"""Catalog request and response bodies (amounts are strings in base/minor units)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from backend.core.schemas import Amount, ApiInput, ApiModel, OnchainCourseId
from backend.core.text import certificate_text

MAX_FIAT_AMOUNT = 99_999_999  # Stripe's cap (8 digits of minor units)
MAX_REFUND_WINDOW = 30 * 24 * 3600


class TokenOut(ApiModel):
    """A payment token of one chain (zero address: that chain's native coin)."""

    chain_id: int
    address: str
    symbol: str
    decimals: int
    name: str


class TokenPriceOut(ApiModel):
    """A course's price in one token, in the token's base units."""

    token: TokenOut
    price: Amount
    updated_block: int


class FiatPriceOut(ApiModel):
    """A card price in minor units (cents) of an ISO-4217 currency."""

    amount: Amount
    currency: str


class LessonSummaryOut(ApiModel):
    """A lesson's position and title (the body is for entitled learners only)."""

    position: int
    title: str


class CourseChainOut(ApiModel):
    """A course's registration on one chain."""

    chain_id: int
    onchain_id: int
    listed: bool | None


class CourseOut(ApiModel):
    """A course with its prices on both rails."""

    id: int
    onchain_id: int | None  # on the API's network
    chains: list[CourseChainOut]
    provider: str
    title: str
    description: str
    status: str
    refund_window: int
    certificate_mode: Literal["mint", "voucher"]
    fiat_price: FiatPriceOut | None
    prices: list[TokenPriceOut]
    lesson_count: int
    created_at: datetime


class CourseDetailOut(CourseOut):
    """A course with its lesson outline."""

    lessons: list[LessonSummaryOut]


class CoursePageOut(ApiModel):
    """A page of courses; pass `nextCursor` as `cursor` for the next one."""

    items: list[CourseOut]
    next_cursor: str | None


def _title(value: str) -> str:
    # The market refuses the same titles (InvalidTitle): certificates must always render.
    return certificate_text(value, "title", 100)


class CourseCreateIn(ApiInput):
    """A new course (created as a draft)."""

    title: str = Field(max_length=100)
    description: str = Field(default="", max_length=20_000)
    refund_window: int = Field(default=14 * 24 * 3600, ge=0, le=MAX_REFUND_WINDOW)

    _check_title = field_validator("title")(_title)


class CourseUpdateIn(ApiInput):
    """Fields to change (omitted ones stay)."""

    title: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=20_000)
    status: Literal["draft", "published", "delisted"] | None = None
    refund_window: int | None = Field(default=None, ge=0, le=MAX_REFUND_WINDOW)
    # mint: the platform mints certificates and pays the gas; voucher: learners claim them.
    certificate_mode: Literal["mint", "voucher"] | None = None

    @field_validator("title")
    @classmethod
    def _check_title(cls, value: str | None) -> str | None:
        return None if value is None else _title(value)


class FiatPriceIn(ApiInput):
    """The card price: integer minor units (e.g. "4900" for 49.00) and an ISO-4217 code.

    An amount of 0 makes the course free to claim.
    """

    amount: Amount
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")

    @field_validator("amount")
    @classmethod
    def _cap(cls, value: int) -> int:
        if value > MAX_FIAT_AMOUNT:
            raise ValueError(f"card prices are at most {MAX_FIAT_AMOUNT} minor units")
        return value


class LessonIn(ApiInput):
    """A lesson's content."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=200_000)


class LessonOut(ApiModel):
    """A lesson with its content."""

    course_id: int
    position: int
    title: str
    body: str


class OnchainIdIn(ApiInput):
    """Link a course to its on-chain id (normally done by the indexer)."""

    onchain_id: OnchainCourseId
