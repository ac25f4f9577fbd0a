"""The worker's own tables: nonces, sent transactions, jobs, live processes, sent receipts,
reconciliation drift.

Unique constraints carry the idempotency guarantees, so a duplicate can only fail loudly:
one transaction per (chain, idempotency key), one live transaction per (chain, sender, nonce),
one job per (topic, ref), one receipt per (order, kind).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.core.db import Address, Base, BigId, JsonType, TokenAmount, UTCDateTime, utcnow


class TxStatus:
    """Life cycle of a `WorkerTransaction`."""

    SIGNED = "signed"  # nonce allocated, signed and recorded; maybe not broadcast yet
    PENDING = "pending"  # accepted by the node at least once, no receipt yet
    MINED = "mined"  # receipt with status 1
    REVERTED = "reverted"  # receipt with status 0 (the nonce is used up)
    LIVE = (SIGNED, PENDING)


class JobStatus:
    """Life cycle of a `WorkerJob`."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    OPEN = (QUEUED, RUNNING)


class WorkerNonce(Base):
    """The next nonce of one sender key on one chain; locked while a nonce is allocated."""

    __tablename__ = "worker_nonces"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sender: Mapped[str] = mapped_column(Address, primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WorkerTransaction(Base):
    """One logical transaction of a worker key: what to send, under which nonce, and its fate.

    A re-send with bumped fees keeps the row (same nonce, new attempt); the row's `tx_hash` is the
    latest attempt, and any attempt's receipt settles it.
    """

    __tablename__ = "worker_transactions"
    __table_args__ = (
        UniqueConstraint("chain_id", "key", name="uq_worker_transactions_chain_key"),
        UniqueConstraint("chain_id", "sender", "nonce", name="uq_worker_transactions_nonce"),
        Index("ix_worker_transactions_live", "chain_id", "sender", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(Address)
    # The caller's idempotency key ("certificate:12:mint"): a second send() returns this row.
    key: Mapped[str] = mapped_column(String(200))
    nonce: Mapped[int] = mapped_column(BigInteger)
    to_address: Mapped[str] = mapped_column(Address)
    data: Mapped[str] = mapped_column(Text)  # 0x calldata
    value: Mapped[int] = mapped_column(TokenAmount, default=0)
    gas: Mapped[int] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[int] = mapped_column(TokenAmount)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(TokenAmount)
    tx_hash: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16), default=TxStatus.SIGNED)
    block_number: Mapped[int | None] = mapped_column(BigInteger, default=None)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    broadcasts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # When the latest attempt was signed: a stuck transaction is re-sent relative to this.
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    mined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    attempts: Mapped[list[WorkerTxAttempt]] = relationship(
        back_populates="transaction", order_by="WorkerTxAttempt.id", cascade="all, delete-orphan"
    )


class WorkerTxAttempt(Base):
    """One signed version of a `WorkerTransaction` (the first, then each fee bump or re-nonce)."""

    __tablename__ = "worker_tx_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("worker_transactions.id", ondelete="CASCADE"), index=True
    )
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    nonce: Mapped[int] = mapped_column(BigInteger)
    max_fee_per_gas: Mapped[int] = mapped_column(TokenAmount)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(TokenAmount)
    raw: Mapped[str] = mapped_column(Text)  # the signed transaction, to re-broadcast verbatim
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    transaction: Mapped[WorkerTransaction] = relationship(back_populates="attempts")


class WorkerJob(Base):
    """A unit of work handed to Celery, tracked so that a lost broker message is re-enqueued.

    The relay (or any enqueuer) writes the job in the same transaction that marks its cause
    handled; the task marks it done. `resume_stalled` re-sends open jobs nobody touched for a
    while, which covers brokers that drop in-flight messages when a worker is killed.
    """

    __tablename__ = "worker_jobs"
    __table_args__ = (
        UniqueConstraint("topic", "ref", name="uq_worker_jobs_topic_ref"),
        Index("ix_worker_jobs_open", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(80))
    ref: Mapped[str] = mapped_column(String(120))  # the outbox event id, or the entity's id
    task: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    enqueues: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    # The process running it ("<celery node>:<pid>"): a running job whose process no worker
    # reports any more (killed) is re-published at once instead of after `stalled_after`.
    claimed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    # When its retry or re-check message is due: a message that is not run by then plus
    # `late_after` was dropped (the broker connection reset under the worker holding it) and is
    # re-published.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WorkerProcess(Base):
    """A worker process that runs tasks, and when it last said it is alive.

    Each process that claims jobs ("<celery node>:<pid>", as in `WorkerJob.claimed_by`) writes
    its row every few seconds from a thread and deletes it when it stops; a running job whose
    claimant fell silent is re-published by `resume_stalled` without waiting for `stalled_after`.
    In the database rather than asked over the broker: remote control does not answer for a while
    after the broker restarts, and a database outage silences every process at once, which the
    comparison with the freshest heartbeat tells apart from one dead process.
    """

    __tablename__ = "worker_processes"

    process: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SentReceipt(Base):
    """A receipt email, at most one per (order, kind); claimed before it is sent."""

    __tablename__ = "worker_sent_receipts"
    __table_args__ = (UniqueConstraint("order_ref", "kind", name="uq_worker_sent_receipts_order"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_ref: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(30))  # "paid" | "refunded"
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    message_id: Mapped[str] = mapped_column(String(300))  # deterministic, so resends dedupe
    backend: Mapped[str] = mapped_column(String(20))
    # "sending" (claimed), "sent", or "skipped" (no email address on file).
    status: Mapped[str] = mapped_column(String(16), default="sending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ReconcileDrift(Base):
    """A disagreement between DB entitlements and on-chain access, and what was done about it."""

    __tablename__ = "worker_reconcile_drift"
    __table_args__ = (Index("ix_worker_reconcile_drift_run", "run_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    course_id: Mapped[int] = mapped_column(BigInteger)
    learner: Mapped[str] = mapped_column(Address)
    kind: Mapped[str] = mapped_column(String(40))  # "missing_on_chain" | "unexpected_on_chain"
    db_active: Mapped[bool] = mapped_column(Boolean)
    chain_access: Mapped[bool] = mapped_column(Boolean)
    action: Mapped[str] = mapped_column(String(40))  # "enqueued_grant" | "reported" ...
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerCursor(Base):
    """Where a periodic scan (reconciliation) got to, so each run checks the next batch."""

    __tablename__ = "worker_cursors"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
