"""Fetching logs: block ranges (backfill) with an adaptive size, and single blocks by hash.

Ranges are only used for blocks at least `reorg_window` below the head, where the answer of a
load-balanced node is settled. Near the head every block is fetched by its hash, which a node
can only answer once it has that block's logs (by number, a lagging node may answer "no logs").
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from indexer.decoding import DecodedLog, DecodeError, LogDecoder
from indexer.rpc import RangeTooLargeError, RpcClient, RpcError

log = logging.getLogger(__name__)


class BlockUnavailableError(Exception):
    """The node does not have a block (yet, or any more: reorged away)."""


@dataclass(slots=True)
class Header:
    """The fields of a block header the indexer uses."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Header:
        """From an eth_getBlockByNumber / newHeads object."""
        return cls(
            number=int(raw["number"], 16),
            hash=raw["hash"],
            parent_hash=raw["parentHash"],
            timestamp=int(raw["timestamp"], 16),
        )


@dataclass(slots=True)
class Chunk:
    """Decoded logs of a contiguous run of blocks, ready to apply in one transaction."""

    start: int
    end: int
    end_header: Header
    logs: list[DecodedLog]
    # Headers of every block in the chunk when fetched block by block (kept for the window).
    headers: list[Header] = field(default_factory=list)
    # The hash the block before `start` had when this chunk was fetched (continuity check).
    parent_hash: str | None = None
    raw_logs: int = 0
    fetch_seconds: float = 0.0
    bad_logs: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def absorb(self, following: Chunk) -> bool:
        """Append the range chunk that continues this one (same transaction); False, and
        nothing changed, when it does not continue it."""
        if (
            self.headers
            or following.headers
            or following.start != self.end + 1
            or (following.parent_hash is not None and following.parent_hash != self.end_header.hash)
        ):
            return False
        self.end = following.end
        self.end_header = following.end_header
        self.logs.extend(following.logs)
        self.raw_logs += following.raw_logs
        self.fetch_seconds += following.fetch_seconds
        self.bad_logs.extend(following.bad_logs)
        return True


class RangeSizer:
    """Chooses eth_getLogs block spans: aims at `target` logs per answer.

    Grows when answers are sparse, shrinks on range errors and timeouts (or jumps to the span the
    provider suggests). A provider's cap on the block range itself (not on the results) is
    remembered: the span never grows past it again.
    """

    def __init__(self, initial: int, minimum: int, maximum: int, target: int) -> None:
        self.min = minimum
        self.max = max(maximum, minimum)
        self.target = target
        self.size = min(max(initial, minimum), self.max)
        self._lock = threading.Lock()  # prefetch threads report concurrently

    def on_success(self, span: int, n_logs: int, elapsed: float) -> None:
        """Adjust after an answer of `n_logs` over `span` blocks."""
        ideal = span * 4 if n_logs == 0 else max(1, int(span * self.target / n_logs))
        with self._lock:
            # Grow at most 2x per step (density varies), shrink at once.
            new = min(ideal, self.size * 2) if ideal > self.size else ideal
            if elapsed > 10.0:  # slow node: stay well inside its timeout
                new = min(new, max(1, span // 2))
            self.size = min(max(new, self.min), self.max)

    def on_range_error(
        self, span: int, suggested: int | None, *, caps_blocks: bool = False
    ) -> None:
        """Shrink after the node refused `span` blocks (`caps_blocks`: for the span itself, not
        for the number of results)."""
        new = suggested if suggested and suggested < span else span // 2
        with self._lock:
            if caps_blocks:
                self.max = max(self.min, min(self.max, new))
            self.size = min(max(new, self.min), self.max)


class Fetcher:
    """Fetches and decodes the logs of the indexed contracts."""

    def __init__(
        self,
        rpc: RpcClient,
        decoder: LogDecoder,
        addresses: Sequence[str],
        sizer: RangeSizer,
    ) -> None:
        self.rpc = rpc
        self.decoder = decoder
        self.addresses = [a.lower() for a in addresses]
        self.topics = [decoder.topics]
        self.sizer = sizer
        self.range_errors = 0

    def _filter(self, **extra: Any) -> dict[str, Any]:
        return {"address": self.addresses, "topics": self.topics, **extra}

    def decode_all(self, raw_logs: list[dict[str, Any]], chunk: Chunk) -> list[DecodedLog]:
        """Decode raw logs in chain order; undecodable ones are kept aside, never dropped."""
        decode = self.decoder.decode
        out: list[DecodedLog] = []
        for raw in raw_logs:
            if raw.get("removed"):
                # Only a subscription sends removed logs; a range answer never should.
                raise RpcError("eth_getLogs", None, "removed log in a getLogs answer")
            try:
                decoded = decode(raw)
            except (DecodeError, KeyError, ValueError, TypeError) as exc:
                chunk.bad_logs.append((raw, str(exc)))
                continue
            if decoded is not None:
                out.append(decoded)
        # Nodes answer in chain order; make sure (cheap when already sorted).
        for i in range(1, len(out)):
            a, b = out[i - 1], out[i]
            if (a.block_number, a.log_index) >= (b.block_number, b.log_index):
                out.sort(key=lambda x: (x.block_number, x.log_index))
                break
        return out

    def fetch_range(self, start: int, end: int, parent_number: int | None = None) -> Chunk:
        """Logs of blocks start..end (one eth_getLogs), the end header, the parent's hash.

        Raises RangeTooLargeError when the node wants a smaller range.
        """
        calls: list[tuple[str, Sequence[Any]]] = [
            ("eth_getLogs", [self._filter(fromBlock=hex(start), toBlock=hex(end))]),
            ("eth_getBlockByNumber", [hex(end), False]),
        ]
        if parent_number is not None:
            calls.append(("eth_getBlockByNumber", [hex(parent_number), False]))
        t0 = time.perf_counter()
        results = self.rpc.batch(calls)
        elapsed = time.perf_counter() - t0
        raw_logs, end_raw = results[0], results[1]
        if end_raw is None or (parent_number is not None and results[2] is None):
            raise BlockUnavailableError(f"block {end} or {parent_number} not available")
        chunk = Chunk(
            start=start,
            end=end,
            end_header=Header.from_json(end_raw),
            logs=[],
            parent_hash=results[2]["hash"] if parent_number is not None else None,
            raw_logs=len(raw_logs),
            fetch_seconds=elapsed,
        )
        chunk.logs = self.decode_all(raw_logs, chunk)
        for lg in chunk.logs:
            if not start <= lg.block_number <= end:
                raise RpcError("eth_getLogs", None, f"log of block {lg.block_number} out of range")
        return chunk

    def fetch_next_range(self, start: int, limit: int, parent_number: int | None) -> Chunk:
        """The next range from `start` (at most up to `limit`), shrinking on range errors."""
        while True:
            end = min(limit, start + self.sizer.size - 1)
            span = end - start + 1
            try:
                chunk = self.fetch_range(start, end, parent_number)
            except RangeTooLargeError as exc:
                self.range_errors += 1
                if span <= 1:
                    # Cannot split a single block: the node cannot serve it by range.
                    raise
                self.sizer.on_range_error(span, exc.suggested_span, caps_blocks=exc.caps_blocks)
                log.debug("range %d-%d refused (%s); now %d", start, end, exc, self.sizer.size)
                continue
            self.sizer.on_success(span, chunk.raw_logs, chunk.fetch_seconds)
            return chunk

    def headers(self, numbers: Sequence[int]) -> list[Header]:
        """Headers by number (one batch); BlockUnavailableError if the node lacks one."""
        results = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        out = []
        for n, raw in zip(numbers, results, strict=True):
            if raw is None:
                raise BlockUnavailableError(f"block {n} not available")
            out.append(Header.from_json(raw))
        return out

    def fetch_blocks(self, headers: Sequence[Header]) -> Chunk:
        """Logs of the given consecutive blocks, each fetched by its hash (one batch)."""
        t0 = time.perf_counter()
        try:
            results = self.rpc.batch(
                [("eth_getLogs", [self._filter(blockHash=h.hash)]) for h in headers]
            )
        except RpcError as exc:
            # EIP-234: a node that does not know the hash errors (never answers "no logs").
            raise BlockUnavailableError(str(exc)) from exc
        chunk = Chunk(
            start=headers[0].number,
            end=headers[-1].number,
            end_header=headers[-1],
            logs=[],
            headers=list(headers),
            parent_hash=headers[0].parent_hash,
            fetch_seconds=time.perf_counter() - t0,
        )
        raw_all: list[dict[str, Any]] = []
        for h, raw_logs in zip(headers, results, strict=True):
            for raw in raw_logs:
                if raw.get("blockHash") != h.hash:
                    raise BlockUnavailableError(f"log of another block in the answer for {h.hash}")
            raw_all.extend(raw_logs)
        chunk.raw_logs = len(raw_all)
        chunk.logs = self.decode_all(raw_all, chunk)
        return chunk


class Prefetcher:
    """Fetches the next backfill ranges ahead of the consumer, several at a time, in order.

    A planner thread cuts [start, limit] into ranges of the sizer's current span and hands them
    to `concurrency` fetch threads; the consumer receives the chunks in block order. Over a
    remote node each request costs a round trip (tens of ms) that dwarfs the node's work, so
    requests in flight overlap their latencies, while commits stay strictly ordered. A range the
    node refuses as too large is split by the thread that fetched it (into several chunks, still
    in order).

    Args:
        fetcher: Fetches and decodes one range.
        start: First block.
        limit: Last block.
        depth: Chunks fetched ahead beyond those in flight.
        concurrency: Ranges in flight at once.
    """

    def __init__(
        self, fetcher: Fetcher, start: int, limit: int, depth: int = 2, concurrency: int = 1
    ) -> None:
        self.fetcher = fetcher
        self.next_start = start
        self.limit = limit
        self.concurrency = max(1, concurrency)
        # Planned ranges waiting for (or being) fetched, in block order.
        self._planned: queue.Queue[Any] = queue.Queue(maxsize=self.concurrency + depth)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="prefetch")
        self._thread = threading.Thread(target=self._plan, name="prefetch-plan", daemon=True)
        self._thread.start()
        self._current: collections.deque[Chunk] = collections.deque()

    def _plan(self) -> None:
        start = self.next_start
        try:
            while start <= self.limit and not self._stop.is_set():
                end = min(self.limit, start + self.fetcher.sizer.size - 1)
                future = self._pool.submit(self._fetch, start, end)
                if not self._put(future):
                    future.cancel()
                    return
                start = end + 1
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(self._DONE)

    def _fetch(self, start: int, end: int) -> list[Chunk]:
        """Every log of start..end, as one chunk or, if the node wants smaller ranges, several."""
        chunks = []
        while start <= end and not self._stop.is_set():
            parent = start - 1 if start > 0 else None
            chunk = self.fetcher.fetch_next_range(start, end, parent)
            chunks.append(chunk)
            start = chunk.end + 1
        return chunks

    _DONE = object()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._planned.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> Chunk:
        while not self._current:
            item = self._planned.get()
            if item is self._DONE:
                self._planned.put(self._DONE)  # later calls end too
                raise StopIteration
            if isinstance(item, BaseException):
                raise item
            self._current.extend(item.result())
        return self._current.popleft()

    def ready(self) -> Chunk | None:
        """The next chunk if it is fetched already (never waits), else None."""
        if not self._current:
            with self._planned.mutex:
                item = self._planned.queue[0] if self._planned.queue else None
            if not isinstance(item, Future) or not item.done() or item.exception() is not None:
                return None
            # Only this consumer takes from the queue: what we looked at is still its head.
            self._current.extend(self._planned.get_nowait().result())
        return self._current.popleft() if self._current else None

    def push_back(self, chunk: Chunk) -> None:
        """Return a chunk taken by `ready` (it comes next again)."""
        self._current.appendleft(chunk)

    def close(self) -> None:
        """Stop fetching and wait for the threads."""
        self._stop.set()
        while True:
            try:
                item = self._planned.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Future):
                item.cancel()
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
