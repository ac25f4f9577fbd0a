"""Database side of the engine: checkpoints, applied logs and the block window, in bulk.

Every function takes the caller's `Session`, so the engine decides the transaction: effects,
applied-log rows, window rows and the checkpoint of one chunk all commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from indexer.bulk import BulkWriter
from indexer.decoding import DecodedLog, json_safe
from indexer.fetcher import Header
from indexer.models import IndexerAppliedLog, IndexerBlock, IndexerCheckpoint, IndexerReorg

ZERO_HASH = "0x" + "0" * 64


@dataclass(slots=True)
class Checkpoint:
    """The last processed block of a stream, and the confirmation levels reached."""

    chain_id: int
    stream: str
    number: int
    hash: str
    levels: dict[str, int] = field(default_factory=dict)
    halted_reason: str | None = None


@dataclass(slots=True)
class AppliedRow:
    """An applied log as stored: what the sink gets back to undo it."""

    id: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    address: str
    event: str
    args: dict[str, Any]
    effect: dict[str, Any]


def load_checkpoint(session: Session, chain_id: int, stream: str) -> Checkpoint | None:
    """The stored checkpoint of a stream, or None on a first run."""
    row = session.get(IndexerCheckpoint, (chain_id, stream))
    if row is None:
        return None
    return Checkpoint(
        chain_id=chain_id,
        stream=stream,
        number=row.block_number,
        hash=row.block_hash,
        levels={k: int(v) for k, v in (row.levels or {}).items()},
        halted_reason=row.halted_reason,
    )


def save_checkpoint(session: Session, cp: Checkpoint, *, create: bool = False) -> None:
    """Write the checkpoint (in the caller's transaction)."""
    values = {
        "block_number": cp.number,
        "block_hash": cp.hash,
        "levels": dict(cp.levels),
        "halted_reason": cp.halted_reason,
    }
    if create:
        session.execute(
            insert(IndexerCheckpoint).values(chain_id=cp.chain_id, stream=cp.stream, **values)
        )
        return
    result = session.execute(
        update(IndexerCheckpoint)
        .where(
            IndexerCheckpoint.chain_id == cp.chain_id,
            IndexerCheckpoint.stream == cp.stream,
        )
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RuntimeError(f"checkpoint of {cp.chain_id}/{cp.stream} vanished")


APPLIED_COLUMNS = (
    "chain_id",
    "block_number",
    "block_hash",
    "tx_hash",
    "log_index",
    "address",
    "event",
    "args",
    "effect",
)


def insert_applied(
    session: Session, chain_id: int, logs: Sequence[DecodedLog], effects: Sequence[dict[str, Any]]
) -> None:
    """Bulk-insert applied-log rows (the unique key rejects a second application)."""
    if not logs:
        return
    rows = [
        (
            chain_id,
            lg.block_number,
            lg.block_hash,
            lg.tx_hash,
            lg.log_index,
            lg.address,
            lg.event,
            json_safe(lg.args),
            effect,
        )
        for lg, effect in zip(logs, effects, strict=True)
    ]
    BulkWriter(session).insert(IndexerAppliedLog.__table__, APPLIED_COLUMNS, rows)  # type: ignore[arg-type]


def insert_blocks(session: Session, chain_id: int, stream: str, headers: Iterable[Header]) -> None:
    """Remember processed blocks for reorg detection."""
    rows = [
        {
            "chain_id": chain_id,
            "stream": stream,
            "number": h.number,
            "hash": h.hash,
            "parent_hash": h.parent_hash,
            "timestamp": h.timestamp,
        }
        for h in headers
    ]
    if rows:
        session.execute(insert(IndexerBlock), rows)


def prune_blocks(session: Session, chain_id: int, stream: str, below: int) -> None:
    """Forget window blocks numbered below `below`."""
    session.execute(
        delete(IndexerBlock).where(
            IndexerBlock.chain_id == chain_id,
            IndexerBlock.stream == stream,
            IndexerBlock.number < below,
        )
    )


def load_window(session: Session, chain_id: int, stream: str) -> dict[int, Header]:
    """The stored recent blocks, by number."""
    rows = session.execute(
        select(IndexerBlock).where(IndexerBlock.chain_id == chain_id, IndexerBlock.stream == stream)
    ).scalars()
    return {r.number: Header(r.number, r.hash, r.parent_hash, r.timestamp) for r in rows}


def delete_blocks_after(session: Session, chain_id: int, stream: str, number: int) -> None:
    """Forget window blocks above `number` (orphaned by a reorg)."""
    session.execute(
        delete(IndexerBlock).where(
            IndexerBlock.chain_id == chain_id,
            IndexerBlock.stream == stream,
            IndexerBlock.number > number,
        )
    )


def applied_after(
    session: Session, chain_id: int, addresses: Sequence[str], number: int
) -> list[AppliedRow]:
    """Applied logs of these contracts above block `number`, newest first (undo order)."""
    rows = session.execute(
        select(IndexerAppliedLog)
        .where(
            IndexerAppliedLog.chain_id == chain_id,
            IndexerAppliedLog.block_number > number,
            IndexerAppliedLog.address.in_(list(addresses)),
        )
        .order_by(IndexerAppliedLog.block_number.desc(), IndexerAppliedLog.log_index.desc())
    ).scalars()
    return [
        AppliedRow(
            id=r.id,
            block_number=r.block_number,
            block_hash=r.block_hash,
            tx_hash=r.tx_hash,
            log_index=r.log_index,
            address=r.address,
            event=r.event,
            args=dict(r.args),
            effect=dict(r.effect),
        )
        for r in rows
    ]


def delete_applied(session: Session, ids: Sequence[int]) -> None:
    """Delete applied-log rows (after their effects were undone)."""
    for i in range(0, len(ids), 1000):
        session.execute(
            delete(IndexerAppliedLog).where(IndexerAppliedLog.id.in_(ids[i : i + 1000]))
        )


def record_reorg(session: Session, **values: Any) -> None:
    """Keep a record of a reorg (handled, or too deep)."""
    session.execute(insert(IndexerReorg).values(**values))
