"""Provider bodies: sales, balances, transactions to sign."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from backend.catalog.schemas import TokenOut
from backend.core.schemas import AddressStr, Amount, ApiInput, ApiModel
from backend.core.text import certificate_text
from backend.orders.schemas import OrderOut
from backend.provider.profiles import MAX_NAME_BYTES, is_domain

MAX_UINT96 = 2**96 - 1


class SalesTotalOut(ApiModel):
    """Totals of one rail and unit (token or currency), in base/minor units: over all courses,
    or of one course (`course_id`). `net` is gross minus refunds; `fees` the platform's share."""

    rail: str
    chain_id: int | None  # crypto: the chain paid on
    token: TokenOut | None
    currency: str | None
    course_id: int | None = None
    orders: int
    gross: Amount
    refunded: Amount
    net: Amount
    fees: Amount


class SalesOut(ApiModel):
    """A provider's sales across both rails (newest orders first, totals over all)."""

    orders: list[OrderOut]
    totals: list[SalesTotalOut]
    by_course: list[SalesTotalOut]


class BalanceOut(ApiModel):
    """On-chain money of the provider in one token."""

    token: TokenOut
    withdrawable: Amount
    escrow_net: Amount
    escrow_fee: Amount


class BalancesOut(ApiModel):
    """On-chain balances per token."""

    market: str
    balances: list[BalanceOut]


class SetPriceIn(ApiInput):
    """A token price in base units (the contract caps prices at 2**96-1)."""

    token: AddressStr
    price: Amount

    @field_validator("price")
    @classmethod
    def _fits_uint96(cls, value: int) -> int:
        if value > MAX_UINT96:
            raise ValueError("prices must fit in uint96")
        return value


class RefundTxIn(ApiInput):
    """Which crypto order to refund."""

    order_id: str = Field(min_length=1, max_length=36)


class WithdrawIn(ApiInput):
    """Which token to withdraw."""

    token: AddressStr


class ProviderProfileIn(ApiInput):
    """The name and website domain a provider publishes on-chain (`setProviderProfile`)."""

    name: str = Field(max_length=MAX_NAME_BYTES)
    domain: str = Field(max_length=253)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        return certificate_text(value, "name", MAX_NAME_BYTES)

    @field_validator("domain")
    @classmethod
    def _host_name(cls, value: str) -> str:
        value = value.strip().lower()
        if not is_domain(value):
            raise ValueError("the domain must be a host name such as school.example")
        return value


class ProviderProfileOut(ApiModel):
    """A provider's public record as the chain holds it, and whether the platform vouches for it."""

    address: str
    name: str
    domain: str
    profile_hash: str
    verified: bool
    verified_at: datetime | None
    verified_by: str | None


class ProviderVerificationIn(ApiInput):
    """An admin's decision about a provider's public record."""

    verified: bool
    # The hash of the record the admin reviewed (what `GET /admin/providers` showed); required
    # to verify, so a record changed after the review is never vouched for.
    profile_hash: str | None = Field(default=None, pattern=r"^0x[0-9a-f]{64}$")
    reason: str = Field(min_length=3, max_length=500)


class ProviderVerificationOut(ApiModel):
    """An admin's verification request and how far the worker has taken it on-chain."""

    id: int
    provider: str
    verify: bool
    profile_hash: str | None
    requested_by: str
    reason: str
    requested_at: datetime
    tx_hash: str | None
    outcome: str | None
    completed_at: datetime | None


class AdminProviderOut(ProviderProfileOut):
    """A provider's public record for the admin's review, with its latest request."""

    latest_request: ProviderVerificationOut | None = None
