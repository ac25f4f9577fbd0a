"""Payout ledger bodies."""

from __future__ import annotations

from datetime import datetime

from backend.catalog.schemas import TokenOut
from backend.core.schemas import Amount, ApiModel


class PayoutOut(ApiModel):
    """One ledger entry in base units of its token."""

    id: int
    kind: str
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
