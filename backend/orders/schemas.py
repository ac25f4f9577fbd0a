"""Order bodies of both rails."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from backend.catalog.schemas import TokenOut
from backend.core.schemas import AddressStr, Amount, ApiInput, ApiModel, RowId


class TxOut(ApiModel):
    """An unsigned transaction for the user's wallet: `value` in wei, as a string."""

    to: str
    data: str
    value: Amount
    chain_id: int


class OrderOut(ApiModel):
    """An order of either rail (amounts in base/minor units, as strings)."""

    id: str
    rail: str
    course_id: int
    buyer: str
    recipient: str
    amount: Amount
    token: TokenOut | None
    currency: str | None
    fee: Amount
    status: str
    order_ref: str
    expires_at: datetime | None
    # Crypto quotes: the refund window (seconds) the purchase transaction holds the market to.
    quoted_refund_window: int | None = None
    chain_id: int | None
    tx_hash: str | None
    log_index: int | None
    block_number: int | None
    confirmed: bool
    stripe_checkout_session_id: str | None
    stripe_payment_intent_id: str | None
    anomalies: list[Any]
    created_at: datetime
    paid_at: datetime | None


class CryptoOrderIn(ApiInput):
    """Quote a crypto purchase; `recipient` defaults to the signed-in buyer."""

    course_id: RowId
    token: AddressStr
    recipient: AddressStr | None = None
    # The chain to pay on (default: the API's network); any configured chain.
    chain_id: int | None = Field(default=None, gt=0, le=2**53)


class CryptoQuoteOut(ApiModel):
    """The pending order and the transactions to sign (approve first for ERC-20 tokens)."""

    order: OrderOut
    transaction: TxOut
    approval: TxOut | None


class RefundOut(ApiModel):
    """Card: the refund was requested from Stripe (its webhook then revokes access).
    Crypto: the refund transaction for the provider's wallet."""

    order_id: str
    rail: str
    status: str
    refund_id: str | None = None
    transaction: TxOut | None = None
