"""Each API process's cache of access answers, kept true by PostgreSQL LISTEN/NOTIFY.

Every write to `entitlements` notifies the `tuition_access` channel when it commits (triggers of
migration 0021: the changed "course:address" keys, or "*"), whoever wrote it. Each process
listens on one dedicated connection and drops the entries named.

The guarantee, also when the channel breaks: an answer is served from the cache only while the
listener has proved, less than `max_staleness` seconds ago, that it hears everything. It proves
it with a ping: every `max_staleness / 4` seconds it notifies the channel itself and waits for
its own notification. PostgreSQL delivers notifications in commit order, so hearing a ping sent
at time s means every change committed before s has been heard and applied. A revoke committed
at T is therefore never served after T + `max_staleness`, whether the connection drops (seen at
once: entries flushed, answers from the database until a new connection proved itself) or goes
silent (pings unanswered: after `max_staleness`, answers from the database again).

An answer read from the database is stored only if no invalidation arrived while it was read
(`epoch`): otherwise a revoke heard during the read could be overwritten by the read's older
answer. Unknown courses are not cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from backend.core.metrics import (
    ACCESS_CACHE_LOOKUPS,
    ACCESS_CACHE_PROVEN,
    ACCESS_CACHE_RECONNECTS,
)

logger = logging.getLogger(__name__)

CHANNEL = "tuition_access"

_HIT, _MISS, _BYPASS = (ACCESS_CACHE_LOOKUPS.labels(result) for result in ("hit", "miss", "bypass"))


class AccessCache:
    """Access answers (the rendered JSON body) by (course id, checksummed address).

    Args:
        connect: Opens a new asyncpg connection for LISTEN.
        max_entries: The most answers kept; the oldest go first.
        max_staleness: Seconds an answer may be served after the listener last proved that it
            hears every change.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        *,
        max_entries: int = 200_000,
        max_staleness: float = 1.0,
    ) -> None:
        self._connect = connect
        self.max_entries = max_entries
        self.max_staleness = max_staleness
        self.heartbeat = max_staleness / 4
        self.epoch = 0  # bumped by every invalidation
        self._entries: dict[tuple[int, str], bytes] = {}
        self._proved_at = -math.inf  # when the newest ping heard back was sent (monotonic)
        self._token = secrets.token_hex(8)  # our pings, not other replicas'
        self._pings: dict[int, float] = {}
        self._seq = 0
        self._fresh = False  # a new connection: flush at its first proof
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        ACCESS_CACHE_PROVEN.set_function(lambda: float(self.proven))

    # ------------------------------------------------------------------------- the hot path

    def get(self, course_id: int, address: str) -> bytes | None:
        """The cached answer, or None (not cached, or the listener has not proved itself)."""
        if time.monotonic() - self._proved_at > self.max_staleness:
            _BYPASS.inc()
            return None
        body = self._entries.get((course_id, address))
        (_HIT if body is not None else _MISS).inc()
        return body

    def put(self, course_id: int, address: str, body: bytes, epoch: int) -> None:
        """Keep an answer read from the database when `epoch` was current, unless an
        invalidation arrived since."""
        if epoch != self.epoch:
            return
        entries = self._entries
        if len(entries) >= self.max_entries:
            del entries[next(iter(entries))]  # dicts keep insertion order: the oldest
        entries[(course_id, address)] = body

    @property
    def proven(self) -> bool:
        """Whether answers are served from the cache now."""
        return time.monotonic() - self._proved_at <= self.max_staleness

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------------- the listener

    def start(self) -> None:
        """Start listening (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="access-cache")

    async def stop(self) -> None:
        """Stop listening and forget every answer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._lost()

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection failed, dropped, or went silent
                logger.warning("access cache listener lost (%s): answers from the database", exc)
            self._lost()
            ACCESS_CACHE_RECONNECTS.inc()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
            if self.proven:
                backoff = 0.05

    async def _listen(self) -> None:
        conn = await asyncio.wait_for(self._connect(), timeout=max(self.max_staleness, 5.0))
        self._conn = conn
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._notified)
            self._fresh = True
            listening_since = time.monotonic()
            # Answers stop being served after `max_staleness` of silence (see `get`); the
            # connection is given up a little later, so a slow moment does not cost a flush.
            silent_after = 3 * self.max_staleness
            while not lost.is_set():
                self._seq += 1
                self._pings[self._seq] = time.monotonic()
                await conn.execute(
                    f"NOTIFY {CHANNEL}, 'ping:{self._token}:{self._seq}'", timeout=silent_after
                )
                heard = max(self._proved_at, listening_since)
                if time.monotonic() - heard > silent_after:
                    # Pings go out but none comes back: a broken channel, not a slow one.
                    raise TimeoutError("no ping heard back")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.heartbeat)
            raise ConnectionError("the listener connection closed")
        finally:
            self._conn = None
            conn.terminate()  # no goodbye on a connection that may be dead

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith("ping:"):
            _, token, seq = payload.split(":")
            sent = self._pings.pop(int(seq), None) if token == self._token else None
            if sent is None:
                return
            if self._fresh:  # what this connection could not hear before it listened
                self._fresh = False
                self._flush()
            self._proved_at = max(self._proved_at, sent)
            return
        self.epoch += 1
        if payload == "*":
            self._entries.clear()
            return
        entries = self._entries
        for key in payload.split(","):
            course, _, address = key.partition(":")
            entries.pop((int(course), address), None)

    def _flush(self) -> None:
        self.epoch += 1
        self._entries.clear()

    def _lost(self) -> None:
        self._proved_at = -math.inf
        self._pings.clear()
        self._flush()
