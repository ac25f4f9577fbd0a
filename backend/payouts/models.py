"""The payout ledger, mirrored from `Released` and `Withdrawn` events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, JsonType, TokenAmount, UTCDateTime, utcnow


class PayoutKind:
    """What moved: escrow became withdrawable (`released`), or a payee withdrew."""

    RELEASED = "released"
    WITHDRAWN = "withdrawn"


class PayoutEntry(Base):
    """One `Released` or `Withdrawn` log; balances themselves are read live from the chain."""

    __tablename__ = "payout_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('released', 'withdrawn')", name="kind"),
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        Index("ix_payout_entries_account", "account", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The provider whose escrow was released, or the payee who withdrew.
    account: Mapped[str] = mapped_column(Address)
    token: Mapped[str] = mapped_column(Address)
    # Net amount released to the provider, or the amount withdrawn.
    amount: Mapped[int] = mapped_column(TokenAmount)
    # The platform fee released alongside (released only; 0 for withdrawals).
    fee: Mapped[int] = mapped_column(TokenAmount, default=0)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConnectAccount(Base):
    """A provider's Stripe Connect Express account, as Stripe last described it (kept from
    `account.updated`, always re-fetched): card sales pay out through it once it is ready."""

    __tablename__ = "connect_accounts"

    provider: Mapped[str] = mapped_column(Address, primary_key=True)
    stripe_account_id: Mapped[str] = mapped_column(String(255), unique=True)
    details_submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    charges_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Stripe's requirements.currently_due: what the provider must still provide.
    requirements_due: Mapped[list[str]] = mapped_column(JsonType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def ready(self) -> bool:
        """Whether card sales can be destination charges to this account."""
        return self.details_submitted and self.charges_enabled
