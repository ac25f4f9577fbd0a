"""Worker processes say they are alive: a thread per worker process (the main process and each
pool process) writes its `worker_processes` row every `heartbeat_interval` seconds and deletes it
on a clean stop. The main process's thread also records which queued jobs it received
(`claim`), as a pool process records the job it runs.

`resume_stalled` re-publishes at once the open jobs whose claimant fell silent (a killed
worker's), instead of waiting `stalled_after` or the broker's visibility timeout for them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import process_session_factory
from backend.worker import jobs

log = logging.getLogger(__name__)

CLAIM_PATIENCE = 10.0  # seconds a claim waits for its job row to be committed


class Heartbeat:
    """Beats for one process from a daemon thread until `stop`."""

    def __init__(
        self,
        process: str,
        interval: float,
        factory: Callable[[], sessionmaker[Session]] = process_session_factory,
    ) -> None:
        self.process = process
        self.interval = interval
        self._factory = factory
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._claims: dict[int, float] = {}  # job id -> when received (monotonic)
        self._claims_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {process}", daemon=True)
        self._failing = False

    def start(self) -> Heartbeat:
        """Beat now, then every `interval` seconds."""
        self._thread.start()
        return self

    def stop(self, forget: bool = True) -> None:
        """Stop beating and (by default) remove the row: a clean exit leaves no claimant."""
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)
        if forget:
            try:
                jobs.forget_process(self._factory(), self.process)
            except Exception as exc:  # the row then just goes stale
                log.warning("could not remove the heartbeat of %s: %s", self.process, exc)

    def claim(self, job_id: int) -> None:
        """Record (from the thread, at once) that this process holds `job_id`'s message."""
        with self._claims_lock:
            self._claims.setdefault(job_id, time.monotonic())
        self._wake.set()

    def beat(self) -> bool:
        """Write one heartbeat; False (logged once per outage) when the database refuses."""
        return self._write(lambda: jobs.heartbeat(self._factory(), self.process))

    def write_claims(self) -> None:
        """Write the pending claims; a job not visible yet (its enqueuer has not committed) is
        tried again for `CLAIM_PATIENCE` seconds."""
        with self._claims_lock:
            pending = dict(self._claims)
        if not pending:
            return
        found: set[int] = set()

        def write() -> None:
            found.update(jobs.claim_received(self._factory(), self.process, set(pending)))

        if not self._write(write):
            return
        now = time.monotonic()
        with self._claims_lock:
            for job_id, since in pending.items():
                if job_id in found or now - since > CLAIM_PATIENCE:
                    self._claims.pop(job_id, None)

    def _write(self, write: Callable[[], object]) -> bool:
        try:
            write()
        except Exception as exc:
            if not self._failing:
                log.warning("heartbeat of %s failed: %s", self.process, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("heartbeat of %s written again", self.process)
        self._failing = False
        return True

    def _run(self) -> None:
        next_beat = 0.0
        while not self._stopped.is_set():
            if time.monotonic() >= next_beat:
                self.beat()
                next_beat = time.monotonic() + self.interval
            self.write_claims()
            self._wake.wait(max(0.0, next_beat - time.monotonic()))
            self._wake.clear()


_beating: dict[int, Heartbeat] = {}
_lock = threading.Lock()


def start_for_this_process(node: str, interval: float) -> Heartbeat:
    """The heartbeat of this process as `node` (started once per pid; a fork starts its own)."""
    pid = os.getpid()
    with _lock:
        beating = _beating.get(pid)
        if beating is None:
            beating = _beating[pid] = Heartbeat(f"{node}:{pid}", interval).start()
        return beating


def stop_for_this_process() -> None:
    """Stop this process's heartbeat, if it has one, and remove its row."""
    with _lock:
        beating = _beating.pop(os.getpid(), None)
    if beating is not None:
        beating.stop()


def claim_in_this_process(job_id: int) -> None:
    """Record that this process holds `job_id`'s message (no-op without a heartbeat)."""
    beating = _beating.get(os.getpid())
    if beating is not None:
        beating.claim(job_id)
