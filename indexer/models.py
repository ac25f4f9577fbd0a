"""The indexer's own tables: applied logs, the recent-block window, checkpoints, reorg records.

Everything is keyed by chain id first, so one database can hold several chains' indexers and a
reorg on one chain never touches another chain's rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, JsonType, UTCDateTime, utcnow


class IndexerCheckpoint(Base):
    """Where one indexer stream (a chain and a deployment) has got to.

    Written in the same transaction as the effects of the blocks it covers, so the checkpoint and
    the effects can never disagree, whatever instant the process dies at.
    """

    __tablename__ = "indexer_checkpoints"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    stream: Mapped[str] = mapped_column(String(120), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    # Per confirmation level ("access", "final"...): the highest block already confirmed.
    levels: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    halted_reason: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class IndexerBlock(Base):
    """A recently processed block: the window in which reorgs are detected and undone."""

    __tablename__ = "indexer_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    stream: Mapped[str] = mapped_column(String(120), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))
    timestamp: Mapped[int] = mapped_column(BigInteger)


class IndexerAppliedLog(Base):
    """One log whose effects were applied, with what is needed to undo them.

    The unique key (chain id, block hash, tx hash, log index) makes a second application of the
    same log fail loudly instead of duplicating its effects.
    """

    __tablename__ = "indexer_applied_logs"
    __table_args__ = (
        UniqueConstraint("chain_id", "block_hash", "tx_hash", "log_index"),
        Index("ix_indexer_applied_logs_chain_block", "chain_id", "block_number"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    address: Mapped[str] = mapped_column(String(42))
    event: Mapped[str] = mapped_column(String(40))
    # The decoded arguments and what applying the log did (enough to undo it).
    args: Mapped[dict[str, Any]] = mapped_column(JsonType)
    effect: Mapped[dict[str, Any]] = mapped_column(JsonType)


class IndexerReorg(Base):
    """A reorg the indexer handled, or one too deep to handle (which halts it)."""

    __tablename__ = "indexer_reorgs"
    __table_args__ = (Index("ix_indexer_reorgs_chain_detected", "chain_id", "detected_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    chain_id: Mapped[int] = mapped_column(BigInteger)
    stream: Mapped[str] = mapped_column(String(120))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(20))  # "reorg" | "too_deep"
    depth: Mapped[int] = mapped_column(Integer)
    ancestor_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    old_head_number: Mapped[int] = mapped_column(BigInteger)
    old_head_hash: Mapped[str] = mapped_column(String(66))
    new_head_number: Mapped[int] = mapped_column(BigInteger)
    new_head_hash: Mapped[str] = mapped_column(String(66))
    orphaned_logs: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[bool] = mapped_column(Boolean, default=True)
    message: Mapped[str | None] = mapped_column(Text, default=None)
