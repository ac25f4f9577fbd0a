"""Worker processes say they are alive: a thread per task-running process writes its
`worker_processes` row every `heartbeat_interval` seconds and deletes it on a clean stop.

`resume_stalled` re-publishes at once the running jobs whose claimant fell silent (a killed
worker's), instead of waiting `stalled_after` for them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import process_session_factory
from backend.worker import jobs

log = logging.getLogger(__name__)


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
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {process}", daemon=True)
        self._failing = False

    def start(self) -> Heartbeat:
        """Beat now, then every `interval` seconds."""
        self._thread.start()
        return self

    def stop(self, forget: bool = True) -> None:
        """Stop beating and (by default) remove the row: a clean exit leaves no claimant."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)
        if forget:
            try:
                jobs.forget_process(self._factory(), self.process)
            except Exception as exc:  # the row then just goes stale
                log.warning("could not remove the heartbeat of %s: %s", self.process, exc)

    def beat(self) -> bool:
        """Write one heartbeat; False (logged once per outage) when the database refuses."""
        try:
            jobs.heartbeat(self._factory(), self.process)
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
        while True:
            self.beat()
            if self._stopped.wait(self.interval):
                return


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
