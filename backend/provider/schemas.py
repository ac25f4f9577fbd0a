"""Provider bodies: sales, balances, transactions to sign."""

from __future__ import annotations

from pydantic import Field, field_validator

from backend.catalog.schemas import TokenOut
from backend.core.schemas import AddressStr, Amount, ApiInput, ApiModel
from backend.orders.schemas import OrderOut

MAX_UINT96 = 2**96 - 1


class SalesTotalOut(ApiModel):
    """Totals of one rail and unit (token or currency), in base/minor units."""

    rail: str
    token: TokenOut | None
    currency: str | None
    orders: int
    gross: Amount
    refunded: Amount
    net: Amount
    fees: Amount


class SalesOut(ApiModel):
    """A provider's sales across both rails (newest orders first, totals over all)."""

    orders: list[OrderOut]
    totals: list[SalesTotalOut]


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
