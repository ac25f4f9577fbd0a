"""The indexing engine: backfill by ranges, follow the head block by block, undo reorgs.

Invariants:
- One transaction per chunk: the sink's effects, the applied-log rows, the block window and the
  checkpoint commit together, so a crash at any instant neither loses nor repeats an effect.
- A block is only applied on top of the block the checkpoint names (parent-hash continuity);
  anything else is a reorg, found by comparing the stored window with the canonical chain —
  never by `removed` flags, which anvil's reorgs do not send.
- Ranges (eth_getLogs by number) stop `reorg_window` blocks below the head; nearer blocks are
  fetched by hash.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import IndexerSettings, get_settings
from backend.core.db import session_scope
from indexer import metrics, store
from indexer.decoding import DecodedLog, LogDecoder
from indexer.fetcher import BlockUnavailableError, Chunk, Fetcher, Header, Prefetcher, RangeSizer
from indexer.heads import HeadWatcher
from indexer.rpc import RpcClient, RpcError, RpcUnavailableError
from indexer.sink import BatchContext, EffectSink
from indexer.store import Checkpoint

log = logging.getLogger(__name__)

UNDECODABLE = "!undecodable"
PRUNE_EVERY = 32


class ReorgTooDeepError(Exception):
    """A reorg deeper than the window: the indexer cannot undo it and must stop."""


class Indexer:
    """Indexes one stream: a chain id and a set of contract addresses."""

    def __init__(
        self,
        *,
        rpc: RpcClient,
        session_factory: sessionmaker[Session],
        sink: EffectSink,
        chain_id: int,
        stream: str,
        addresses: Sequence[str],
        start_block: int,
        settings: IndexerSettings | None = None,
        decoder: LogDecoder | None = None,
        heads: HeadWatcher | None = None,
        progress: Any = None,
    ) -> None:
        self.settings = settings or get_settings().indexer
        s = self.settings
        self.rpc = rpc
        self.sessions = session_factory
        self.sink = sink
        self.chain_id = chain_id
        self.stream = stream
        self.addresses = list(addresses)
        self.start_block = start_block
        self.decoder = decoder or LogDecoder.default()
        self.fetcher = Fetcher(
            rpc,
            self.decoder,
            self.addresses,
            RangeSizer(s.initial_range, s.min_range, s.max_range, s.target_logs),
        )
        self.heads = heads or HeadWatcher(None, poll_interval=s.poll_interval)
        self.progress = progress
        self.window_size = s.reorg_window
        self.cp: Checkpoint | None = None
        self.window: dict[int, Header] = {}
        self.head: Header | None = None
        self.applied_total = 0
        self.reorgs = 0
        self._label = str(chain_id)
        self._stop = threading.Event()
        self._levels = {name: depth for name, depth in sink.levels.items() if depth > 0}
        self._short_head = 0
        self._pruned_below = -1
        # Blocks with logs not yet past every confirmation level (valid once a commit has run:
        # blocks applied by an earlier process are unknown, so the first pass always confirms).
        self._log_blocks: set[int] = set()
        self._confirm_known = False
        # The chain's seconds per block (moving average of the heads seen) and when the newest
        # head number was first seen.
        self._block_time: float | None = None
        self._block_time_spread = 0.0
        self._head_seen_at = 0.0

    # ------------------------------------------------------------------ state

    def load(self) -> Checkpoint:
        """Read (or create) the checkpoint and the block window."""
        with session_scope(self.sessions) as session:
            cp = store.load_checkpoint(session, self.chain_id, self.stream)
            if cp is None:
                number = self.start_block - 1
                parent = self.rpc.header(number) if number >= 0 else None
                if number >= 0 and parent is None:
                    raise RpcError("eth_getBlockByNumber", None, f"no block {number}")
                header = (
                    Header.from_json(parent)
                    if parent is not None
                    else Header(-1, store.ZERO_HASH, store.ZERO_HASH, 0)
                )
                cp = Checkpoint(self.chain_id, self.stream, header.number, header.hash)
                cp.levels = {name: header.number for name in self._levels}
                store.save_checkpoint(session, cp, create=True)
                if header.number >= 0:
                    store.insert_blocks(session, self.chain_id, self.stream, [header])
                log.info(
                    "chain %s: new stream %s from block %d",
                    self.chain_id,
                    self.stream,
                    self.start_block,
                )
            self.window = store.load_window(session, self.chain_id, self.stream)
        if cp.number >= 0 and cp.number not in self.window:
            self.window[cp.number] = Header(cp.number, cp.hash, store.ZERO_HASH, 0)
        self.cp = cp
        metrics.CHECKPOINT.labels(self._label).set(cp.number)
        return cp

    # ------------------------------------------------------------------ loop

    def stop(self) -> None:
        """Ask `run` to return after the current step."""
        self._stop.set()

    def run(self, stop: threading.Event | None = None) -> None:
        """Index until stopped; raises ReorgTooDeepError when halted by a deep reorg."""
        if stop is not None:
            self._stop = stop  # one event for run(), backfill loops and stop()
        stop = self._stop
        if self.cp is None:
            self.load()
        self.heads.start()
        hint: Header | None = None
        failures = 0
        try:
            while not stop.is_set():
                try:
                    progressed = self.step(hint)
                    failures = 0
                except (RpcUnavailableError, BlockUnavailableError, RpcError) as exc:
                    # Transient node trouble: wait and look again (state is in the database).
                    failures += 1
                    delay = min(0.05 * 2**failures, 5.0)
                    log.warning("chain %s: %s; retrying in %.2fs", self.chain_id, exc, delay)
                    self.heads.sleep(delay)
                    hint = None
                    continue
                except OperationalError as exc:
                    # The database went away: whether the last commit landed is unknown, so
                    # reload the checkpoint and window from it once it is back.
                    failures += 1
                    delay = min(0.2 * 2**failures, 10.0)
                    log.error("chain %s: database error (%s); retrying in %.1fs",
                              self.chain_id, exc, delay)  # fmt: skip
                    self.heads.sleep(delay)
                    with contextlib.suppress(OperationalError):
                        self.load()
                    hint = None
                    continue
                hint = None
                if not progressed:
                    if self.heads.connected:
                        raw = self.heads.wait(1.0)
                        hint = Header.from_json(raw) if raw else None
                    else:
                        self.heads.sleep(self.poll_delay())
        finally:
            self.heads.stop()

    def catch_up(self, max_steps: int = 1_000_000) -> Checkpoint:
        """Step until the checkpoint is at the head (tests, one-shot runs)."""
        if self.cp is None:
            self.load()
        for _ in range(max_steps):
            if not self.step(None):
                break
        assert self.cp is not None
        return self.cp

    def _observe_head(self, head: Header) -> None:
        """Learn the chain's block time, and how steady it is, from the heads seen."""
        last = self.head
        if last is None or head.number <= last.number:
            return
        self._head_seen_at = time.monotonic()
        seconds = (head.timestamp - last.timestamp) / (head.number - last.number)
        if seconds < 0:
            return
        if self._block_time is None:
            self._block_time, self._block_time_spread = seconds, 0.0
            return
        self._block_time_spread = 0.8 * self._block_time_spread + 0.2 * abs(
            seconds - self._block_time
        )
        self._block_time = 0.8 * self._block_time + 0.2 * seconds

    def poll_delay(self) -> float:
        """How long to wait before asking the node for a new head again (polling, at the head).

        Each poll costs a call, billed by hosted providers. Blocks come at a steady pace on
        production chains, so after a new block the indexer sleeps through most of the block
        time and polls at `poll_interval` only from 80 % of it on (a late block costs a few more
        polls, not latency). A chain without a steady pace (a dev node mining on demand) or
        with blocks about as frequent as the polls is polled at `poll_interval`.
        """
        interval = self.settings.poll_interval
        block_time = self._block_time
        if (
            not self.settings.poll_by_block_time
            or block_time is None
            or block_time < 2 * interval
            or self._block_time_spread > 0.25 * block_time
        ):
            return interval
        quiet = 0.8 * block_time - (time.monotonic() - self._head_seen_at)
        return max(interval, min(quiet, block_time))

    def latest(self) -> Header:
        """The node's latest header."""
        raw = self.rpc.header("latest")
        if raw is None:
            raise BlockUnavailableError("no latest block")
        return Header.from_json(raw)

    def step(self, hint: Header | None = None) -> bool:
        """Do one unit of work; False when already at the head."""
        assert self.cp is not None
        cp = self.cp
        # A subscription header is only a shortcut for the next block; anything else (a stale or
        # duplicate notification) is checked against the node's real latest block.
        head = hint if hint is not None and hint.number > cp.number else self.latest()
        self._observe_head(head)
        self.head = head
        metrics.HEAD_LAG.labels(self._label).set(max(0, head.number - cp.number))
        if head.number < cp.number:
            # The chain got shorter (anvil_rollback, or a node behind us): make sure before
            # undoing anything.
            self._short_head += 1
            if self._short_head < 3:
                self.heads.sleep(self.settings.poll_interval)
                return True
            self._short_head = 0
            self.handle_reorg(head)
            return True
        self._short_head = 0
        if head.number == cp.number:
            if head.hash != cp.hash:
                self.handle_reorg(head)  # same height, different tip
                return True
            return False
        safe = head.number - self.window_size
        if cp.number < safe:
            self.backfill(safe, head)
        else:
            self.follow(head)
        return True

    # ------------------------------------------------------------------ backfill

    def backfill(self, limit: int, head: Header) -> None:
        """Apply ranges up to `limit` (at least `reorg_window` below the head)."""
        assert self.cp is not None
        prefetch = Prefetcher(
            self.fetcher, self.cp.number + 1, limit, concurrency=self.settings.fetch_concurrency
        )
        try:
            for chunk in prefetch:
                # Ranges fetched already go into the same transaction (a commit has a fixed
                # cost; small ranges, as capped providers force, would each pay it).
                while len(chunk.logs) < self.settings.target_logs:
                    following = prefetch.ready()
                    if following is None:
                        break
                    if not chunk.absorb(following):
                        prefetch.push_back(following)
                        break
                if chunk.parent_hash is not None and chunk.parent_hash != self.cp.hash:
                    log.warning(
                        "chain %s: block %d changed under the checkpoint",
                        self.chain_id,
                        self.cp.number,
                    )
                    prefetch.close()
                    self.handle_reorg(self.latest())
                    return
                self.commit(chunk, head)
                if self.progress is not None:
                    self.progress.update(self, chunk, limit)
                if self._stop.is_set():
                    break
        finally:
            prefetch.close()
            metrics.RANGE_ERRORS.labels(self._label).inc(self.fetcher.range_errors)
            self.fetcher.range_errors = 0

    # ------------------------------------------------------------------ head

    def follow(self, head: Header) -> None:
        """Apply the blocks after the checkpoint one by one, by hash."""
        assert self.cp is not None
        cp = self.cp
        last = min(head.number, cp.number + self.settings.head_batch)
        numbers = list(range(cp.number + 1, last + 1))
        if numbers == [head.number] and head.parent_hash:
            headers = [head]  # the subscription already gave us this header
        else:
            headers = self.fetcher.headers(numbers)
        if headers[0].parent_hash != cp.hash:
            self.handle_reorg(self.latest())
            return
        for i in range(1, len(headers)):
            if headers[i].parent_hash != headers[i - 1].hash:
                headers = headers[:i]  # the chain moved while we read it: take the prefix
                break
        chunk = self.fetcher.fetch_blocks(headers)
        t0 = time.perf_counter()
        self.commit(chunk, head)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "chain %s: blocks %d-%d: %d logs, fetched in %.1f ms, committed in %.1f ms",
                self.chain_id, chunk.start, chunk.end, len(chunk.logs),
                chunk.fetch_seconds * 1000, (time.perf_counter() - t0) * 1000,
            )  # fmt: skip

    # ------------------------------------------------------------------ reorgs

    def handle_reorg(self, head: Header) -> None:
        """Find the common ancestor, undo orphaned blocks and apply the new chain at once."""
        assert self.cp is not None
        cp = self.cp
        for _attempt in range(10):
            numbers = sorted((n for n in self.window if n <= head.number), reverse=True)
            canonical = self.fetcher.headers(numbers) if numbers else []
            ancestor: Header | None = None
            for h in canonical:
                if self.window[h.number].hash == h.hash:
                    ancestor = self.window[h.number]
                    break
            if ancestor is None or cp.number - ancestor.number > self.window_size:
                self._halt(head, ancestor)
            assert ancestor is not None
            if ancestor.number == cp.number:
                return  # nothing of ours changed (the head moved meanwhile)
            new_end = min(
                head.number, max(cp.number, ancestor.number + 1) + self.settings.head_batch
            )
            headers = self.fetcher.headers(list(range(ancestor.number + 1, new_end + 1)))
            expected = ancestor.hash
            continuous = True
            for h in headers:
                if h.parent_hash != expected:
                    continuous = False
                    break
                expected = h.hash
            if not continuous:
                head = self.latest()
                continue
            try:
                chunk = self.fetcher.fetch_blocks(headers) if headers else None
            except BlockUnavailableError:
                head = self.latest()
                continue
            depth = cp.number - ancestor.number
            orphaned = self.commit(
                chunk,
                head,
                ancestor=ancestor,
                reorg_info={
                    "depth": depth,
                    "old_head_number": cp.number,
                    "old_head_hash": cp.hash,
                },
            )
            self.reorgs += 1
            metrics.REORGS.labels(self._label).inc()
            metrics.REORG_DEPTH.labels(self._label).set(depth)
            log.warning(
                "chain %s: reorg of depth %d below block %d (ancestor %d): %d logs undone, "
                "new head %d",
                self.chain_id,
                depth,
                cp.number,
                ancestor.number,
                orphaned,
                self.cp.number,
            )
            return
        raise BlockUnavailableError("the chain kept changing while resolving a reorg")

    def _halt(self, head: Header, ancestor: Header | None) -> None:
        assert self.cp is not None
        cp = self.cp
        oldest = min(self.window) if self.window else cp.number
        message = (
            f"reorg deeper than the {self.window_size}-block window on chain {self.chain_id}: "
            f"no common ancestor with the stored blocks {oldest}..{cp.number} "
            f"(new head {head.number} {head.hash}); refusing to guess. Investigate, then "
            f"re-index from a block before the fork."
            if ancestor is None
            else f"reorg of depth {cp.number - ancestor.number} on chain {self.chain_id} exceeds "
            f"the {self.window_size}-block window"
        )
        with session_scope(self.sessions) as session:
            store.record_reorg(
                session,
                chain_id=self.chain_id,
                stream=self.stream,
                kind="too_deep",
                depth=cp.number - ancestor.number if ancestor else cp.number - oldest + 1,
                ancestor_number=ancestor.number if ancestor else None,
                old_head_number=cp.number,
                old_head_hash=cp.hash,
                new_head_number=head.number,
                new_head_hash=head.hash,
                resolved=False,
                message=message,
            )
            cp.halted_reason = message
            store.save_checkpoint(session, cp)
        metrics.HALTED.labels(self._label).set(1)
        log.critical("INDEXER HALTED: %s", message)
        raise ReorgTooDeepError(message)

    # ------------------------------------------------------------------ commit

    def commit(
        self,
        chunk: Chunk | None,
        head: Header,
        *,
        ancestor: Header | None = None,
        reorg_info: dict[str, Any] | None = None,
    ) -> int:
        """Apply a chunk (after undoing blocks above `ancestor`) in one transaction.

        Returns the number of orphaned logs undone.
        """
        assert self.cp is not None
        old = self.cp
        new_cp = Checkpoint(
            self.chain_id,
            self.stream,
            chunk.end if chunk else ancestor.number if ancestor else old.number,
            chunk.end_header.hash if chunk else ancestor.hash if ancestor else old.hash,
            dict(old.levels),
        )
        headers = (chunk.headers or [chunk.end_header]) if chunk else []
        timestamps = {h.number: h.timestamp for h in headers}
        ctx = BatchContext(
            self.chain_id,
            self.stream,
            head.number,
            reorg=ancestor is not None,
            timestamps=timestamps,
        )
        logs = chunk.logs if chunk else []
        undone: list[store.AppliedRow] = []
        log_blocks = self._log_blocks
        with self._rollback_guard(), session_scope(self.sessions) as session:
            batch = self.sink.open(session, ctx)
            if ancestor is not None:
                undone = store.applied_after(
                    session, self.chain_id, self.addresses, ancestor.number
                )
                batch.undo(undone)
                store.delete_applied(session, [r.id for r in undone])
                store.delete_blocks_after(session, self.chain_id, self.stream, ancestor.number)
                for name in new_cp.levels:
                    new_cp.levels[name] = min(new_cp.levels[name], ancestor.number)
            effects = batch.apply(logs)
            store.insert_applied(session, self.chain_id, logs, effects)
            if chunk and chunk.bad_logs:
                self._store_bad_logs(session, chunk)
            batch.close()
            store.insert_blocks(session, self.chain_id, self.stream, headers)
            if ancestor is not None or new_cp.number - self._pruned_below > PRUNE_EVERY:
                # Pruning is a statement per commit otherwise; the window may hold up to
                # PRUNE_EVERY extra old blocks, which only makes the ancestor search look further.
                self._pruned_below = new_cp.number - self.window_size
                store.prune_blocks(session, self.chain_id, self.stream, self._pruned_below)
            log_blocks = self._log_blocks | {lg.block_number for lg in logs}
            for name, depth in self._levels.items():
                through = min(new_cp.number, head.number - depth)
                done = new_cp.levels.get(name, self.start_block - 1)
                if through > done:
                    # Blocks this process applied without logs need no confirmation work.
                    if not self._confirm_known or any(done < b <= through for b in log_blocks):
                        self.sink.confirm(session, self.chain_id, name, done + 1, through)
                    new_cp.levels[name] = through
            if reorg_info is not None:
                assert ancestor is not None
                store.record_reorg(
                    session,
                    chain_id=self.chain_id,
                    stream=self.stream,
                    kind="reorg",
                    ancestor_number=ancestor.number,
                    new_head_number=new_cp.number,
                    new_head_hash=new_cp.hash,
                    orphaned_logs=len(undone),
                    **reorg_info,
                )
            store.save_checkpoint(session, new_cp)
        # Committed: now the in-memory state may follow.
        self._confirm_known = True
        lowest = min(new_cp.levels.values(), default=new_cp.number)
        self._log_blocks = {b for b in log_blocks if b > lowest}
        if ancestor is not None:
            for n in [n for n in self.window if n > ancestor.number]:
                del self.window[n]
        for h in headers:
            self.window[h.number] = h
        for n in [n for n in self.window if n < new_cp.number - self.window_size]:
            del self.window[n]
        self.cp = new_cp
        self.applied_total += len(logs)
        self._metrics(logs, undone, headers, head)
        return len(undone)

    @contextlib.contextmanager
    def _rollback_guard(self) -> Iterator[None]:
        # A sink may cache what its transaction wrote; tell it when that transaction failed.
        try:
            yield
        except BaseException:
            rollback = getattr(self.sink, "rollback", None)
            if rollback is not None:
                rollback()
            raise

    def _store_bad_logs(self, session: Session, chunk: Chunk) -> None:
        # Recorded as applied with no effect: visible, counted, and never retried forever.
        bad: list[DecodedLog] = []
        errors: list[dict[str, Any]] = []
        for raw, error in chunk.bad_logs:
            try:
                bad.append(
                    DecodedLog(
                        block_number=int(raw["blockNumber"], 16),
                        block_hash=raw["blockHash"],
                        tx_hash=raw["transactionHash"],
                        tx_index=int(raw.get("transactionIndex") or "0x0", 16),
                        log_index=int(raw["logIndex"], 16),
                        address=str(raw["address"])[:42],
                        event=UNDECODABLE,
                        args={"topics": raw.get("topics"), "data": raw.get("data")},
                    )
                )
            except (KeyError, TypeError, ValueError):
                log.error("chain %s: unusable log %r", self.chain_id, raw)
                continue
            errors.append({"error": error})
            log.error(
                "chain %s: undecodable log %s#%s: %s",
                self.chain_id,
                raw.get("transactionHash"),
                raw.get("logIndex"),
                error,
            )
        store.insert_applied(session, self.chain_id, bad, errors)
        metrics.BAD_LOGS.labels(self._label).inc(len(bad))

    def _metrics(
        self,
        logs: Sequence[DecodedLog],
        undone: Sequence[store.AppliedRow],
        headers: Sequence[Header],
        head: Header,
    ) -> None:
        label = self._label
        assert self.cp is not None
        for name, count in collections.Counter(lg.event for lg in logs).items():
            metrics.EVENTS.labels(label, name).inc(count)
        for name, count in collections.Counter(r.event for r in undone).items():
            metrics.UNDONE.labels(label, name).inc(count)
        metrics.CHECKPOINT.labels(label).set(self.cp.number)
        metrics.HEAD_LAG.labels(label).set(max(0, head.number - self.cp.number))
        if headers and headers[-1].timestamp:
            metrics.LAST_BLOCK_TS.labels(label).set(headers[-1].timestamp)


def monotonic_ms() -> float:
    """Milliseconds on the monotonic clock (progress and benchmarks)."""
    return time.monotonic() * 1000.0
