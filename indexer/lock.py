"""One active indexer per chain: the others wait as hot standbys.

PostgreSQL: a session-level advisory lock keyed by the chain id, held on a dedicated connection
(it vanishes with the connection, so a killed leader frees it at once). SQLite: an exclusive
flock on a file next to the database (freed by the kernel when the process dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)


def lock_key(chain_id: int) -> int:
    """A signed 64-bit advisory-lock key derived from the chain id."""
    digest = hashlib.sha256(f"tuition-indexer:{chain_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class LeaderLock(Protocol):
    """Exclusive right to index a chain."""

    def try_acquire(self) -> bool:
        """Take the lock if free."""
        ...

    def held(self) -> bool:
        """Whether the lock is (still) held."""
        ...

    def release(self) -> None:
        """Give the lock up."""


class PgAdvisoryLock:
    """pg_try_advisory_lock on a dedicated autocommit connection."""

    def __init__(self, engine: Engine, chain_id: int) -> None:
        self.engine = engine
        self.key = lock_key(chain_id)
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other session holds it."""
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
        return bool(got.scalar())

    def held(self) -> bool:
        """Whether the lock's connection is alive (a session lock lives as long as it)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:
            log.error("lost the indexer lock connection: %s", exc)
            return False

    def release(self) -> None:
        """Unlock and close the connection."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class FileLock:
    """An exclusive, non-blocking flock on a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held open for the process lifetime
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return True

    def held(self) -> bool:
        """A flock lasts as long as the file is open."""
        return self._fh is not None

    def release(self) -> None:
        """Unlock."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


class NoLock:
    """For in-memory SQLite databases, which only one process can see anyway."""

    def try_acquire(self) -> bool:
        """Always granted."""
        return True

    def held(self) -> bool:
        """Always held."""
        return True

    def release(self) -> None:
        """Nothing to release."""


def leader_lock(engine: Engine, chain_id: int) -> LeaderLock:
    """The right lock for the engine's database."""
    if engine.dialect.name == "postgresql":
        return PgAdvisoryLock(engine, chain_id)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return FileLock(Path(f"{database}.indexer-{chain_id}.lock"))
    return NoLock()


def acquire(lock: LeaderLock, stop: threading.Event, interval: float, chain_id: int) -> bool:
    """Wait (as a standby) until the lock is ours; False if stopped first.

    A database that cannot be reached (restarting, failing over) is waited for like a busy
    lock, with a back-off: a standby outlives the outage instead of exiting.
    """
    waiting = False
    failures = 0
    while not stop.is_set():
        try:
            got = lock.try_acquire()
        except Exception as exc:  # the driver's error for a database that went away
            failures += 1
            lock.release()  # a new connection next time
            delay = min(interval * 2**failures, 30.0)
            log.warning("chain %s: lock unavailable (%s); retrying in %.1fs", chain_id, exc, delay)
            stop.wait(delay)
            continue
        failures = 0
        if got:
            if waiting:
                log.warning("chain %s: took over as the active indexer", chain_id)
            return True
        if not waiting:
            log.info("chain %s: another indexer is active; standing by", chain_id)
            waiting = True
        stop.wait(interval)
    return False
