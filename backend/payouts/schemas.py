"""Payout ledger bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

from backend.catalog.schemas import TokenOut
from backend.core.schemas import Amount, ApiModel


class PayoutOut(ApiModel):
    """One ledger entry in base units of its token."""

    id: int
    kind: str
    chain_id: int
    token: TokenOut
    amount: Amount
    fee: Amount
    tx_hash: str
    log_index: int
    block_number: int
    recorded_at: datetime


class PayoutsOut(ApiModel):
    """A page of entries, newest first; `next_before` fetches the next page."""

    payouts: list[PayoutOut]
    next_before: int | None


class ConnectAccountOut(ApiModel):
    """My Stripe Connect account for card payouts (`status`: none, onboarding, ready)."""

    status: str
    stripe_account_id: str | None = None
    details_submitted: bool = False
    charges_enabled: bool = False
    payouts_enabled: bool = False
    requirements_due: list[str] = []


class OnboardingOut(ApiModel):
    """A one-time Stripe onboarding link (send the provider there) and the account."""

    url: str
    account: ConnectAccountOut


# A Stripe balance goes negative when a refund or dispute takes back more than is pending.
SignedAmount = Annotated[
    int,
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": "^-?[0-9]+$", "example": "4625"}),
]


class MoneyOut(ApiModel):
    """An amount in minor units of a currency (cents; whole yen for JPY), maybe negative."""

    amount: SignedAmount
    currency: str


class CardPayoutOut(ApiModel):
    """A payout of my Stripe balance to my bank."""

    id: str
    amount: Amount
    currency: str
    status: str
    arrival_date: datetime
    created_at: datetime


class CardBalanceOut(ApiModel):
    """My card revenue at Stripe: pending (not settled yet), available (to be paid out), and
    the latest payouts. Empty until my Connect account is ready."""

    status: str
    pending: list[MoneyOut]
    available: list[MoneyOut]
    payouts: list[CardPayoutOut]
