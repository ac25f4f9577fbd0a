"""Recording payout events (idempotent, undone on reorgs) and listing them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.payouts.models import PayoutEntry


def record_payout(
    session: Session,
    *,
    kind: str,
    account: str,
    token: str,
    amount: int,
    fee: int,
    chain_id: int,
    tx_hash: str,
    log_index: int,
    block_hash: str,
    block_number: int,
) -> PayoutEntry:
    """The ledger entry of one log; the same log twice returns the first entry."""
    existing = session.scalar(
        select(PayoutEntry).where(
            PayoutEntry.chain_id == chain_id,
            PayoutEntry.tx_hash == tx_hash,
            PayoutEntry.log_index == log_index,
        )
    )
    if existing is not None:
        # Re-mined in another block after a reorg: the log is the same payout.
        existing.block_hash, existing.block_number = block_hash, block_number
        return existing
    entry = PayoutEntry(
        kind=kind,
        account=account,
        token=token,
        amount=amount,
        fee=fee,
        chain_id=chain_id,
        tx_hash=tx_hash,
        log_index=log_index,
        block_hash=block_hash,
        block_number=block_number,
    )
    session.add(entry)
    session.flush()
    return entry


def forget_payout(session: Session, *, chain_id: int, tx_hash: str, log_index: int) -> None:
    """Drop the entry of a log its chain orphaned."""
    session.execute(
        delete(PayoutEntry).where(
            PayoutEntry.chain_id == chain_id,
            PayoutEntry.tx_hash == tx_hash,
            PayoutEntry.log_index == log_index,
        )
    )


def payouts_of(
    session: Session, account: str, *, before: int | None = None, limit: int = 100
) -> Sequence[PayoutEntry]:
    """An account's entries, newest first (`before`: an entry id, for the next page)."""
    stmt = select(PayoutEntry).where(PayoutEntry.account == account)
    if before is not None:
        stmt = stmt.where(PayoutEntry.id < before)
    return session.scalars(stmt.order_by(PayoutEntry.id.desc()).limit(limit)).all()
