"""Backfill progress: a rich progress bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("indexer.progress")


class BackfillProgress:
    """Reports blocks/s, events/s and the lag to the head while backfilling."""

    def __init__(self, chain_id: int, *, bar: bool | None = None, every: float = 5.0) -> None:
        self.chain_id = chain_id
        self.every = every
        self.bar = sys.stderr.isatty() if bar is None else bar
        self._progress: Any = None
        self._task: Any = None
        self._t0 = time.monotonic()
        self._last_report = self._t0
        self._first_block: int | None = None
        self._events = 0
        self._blocks = 0

    def update(self, indexer: Any, chunk: Any, limit: int) -> None:
        """Called after each committed backfill chunk."""
        now = time.monotonic()
        if self._first_block is None:
            self._first_block = chunk.start
            self._t0 = now - chunk.fetch_seconds
        self._events += len(chunk.logs)
        self._blocks += chunk.end - chunk.start + 1
        elapsed = max(now - self._t0, 1e-6)
        head = indexer.head.number if indexer.head is not None else limit
        lag = head - chunk.end
        if self.bar:
            self._bar_update(chunk.end, limit, elapsed, lag)
        elif now - self._last_report >= self.every or chunk.end >= limit:
            self._last_report = now
            log.info(
                "chain %s backfill: block %d/%d, %.0f blocks/s, %.0f events/s, lag %d blocks",
                self.chain_id,
                chunk.end,
                limit,
                self._blocks / elapsed,
                self._events / elapsed,
                lag,
            )
        if chunk.end >= limit:
            self.close()

    def _bar_update(self, block: int, limit: int, elapsed: float, lag: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        assert self._first_block is not None
        total = max(limit - self._first_block + 1, 1)
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]chain {task.fields[chain]}[/] backfill"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,} blocks"),
                TextColumn("{task.fields[bps]:,.0f} blocks/s {task.fields[eps]:,.0f} events/s"),
                TextColumn("lag {task.fields[lag]:,}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "backfill", total=total, chain=self.chain_id, bps=0.0, eps=0.0, lag=lag
            )
        self._progress.update(
            self._task,
            total=total,
            completed=block - self._first_block + 1,
            bps=self._blocks / elapsed,
            eps=self._events / elapsed,
            lag=lag,
        )

    def close(self) -> None:
        """Stop the bar (the next backfill, after a gap, starts a new one)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._first_block = None
        self._events = 0
        self._blocks = 0
