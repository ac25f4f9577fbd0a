"""The interface between the engine and whatever turns events into effects.

The engine owns ordering, exactly-once and reorgs; a sink owns what an event *means*. Per
transaction the engine opens a `SinkBatch` on its session, undoes orphaned logs (newest first),
applies new ones (chain order) and closes the batch, then commits. Everything a sink writes goes
through that session, so it commits with the applied-log rows and the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from indexer.decoding import DecodedLog
from indexer.store import AppliedRow


@dataclass(slots=True)
class BatchContext:
    """What a sink may want to know about the batch it is applying."""

    chain_id: int
    stream: str
    head: int  # the chain head when the batch was fetched
    reorg: bool = False  # undo of orphaned logs followed by the new chain's logs
    # Block timestamps known for this batch (every block near the head, range ends otherwise).
    timestamps: dict[int, int] = field(default_factory=dict)


class SinkBatch(Protocol):
    """Effects of one transaction."""

    def undo(self, rows: Sequence[AppliedRow]) -> None:
        """Undo the effects of orphaned logs, given newest first."""

    def apply(self, logs: Sequence[DecodedLog]) -> list[dict[str, Any]]:
        """Apply logs in chain order; return per log a JSON-able record of what was done."""
        ...

    def close(self) -> None:
        """End of the batch (e.g. finish undoing purchases that were not re-included)."""


class EffectSink(Protocol):
    """Turns events into effects."""

    # Confirmation levels the sink wants: name -> confirmations (0: handled inside apply).
    levels: Mapping[str, int]

    def open(self, session: Session, ctx: BatchContext) -> SinkBatch:
        """Start a batch on the engine's session."""
        ...

    def confirm(self, session: Session, chain_id: int, level: str, first: int, last: int) -> None:
        """Blocks first..last reached the `level` confirmation depth."""


class NullSink:
    """Applies nothing; the engine still records the applied logs (benchmarks, dry runs)."""

    levels: Mapping[str, int] = {}

    def open(self, session: Session, ctx: BatchContext) -> SinkBatch:
        """A batch that does nothing."""
        return _NullBatch()

    def confirm(self, session: Session, chain_id: int, level: str, first: int, last: int) -> None:
        """Nothing to confirm."""


class _NullBatch:
    def undo(self, rows: Sequence[AppliedRow]) -> None:
        pass

    def apply(self, logs: Sequence[DecodedLog]) -> list[dict[str, Any]]:
        return [{} for _ in logs]

    def close(self) -> None:
        pass
