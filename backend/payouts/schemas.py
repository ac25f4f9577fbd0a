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
