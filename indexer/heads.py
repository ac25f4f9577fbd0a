"""New-head notifications: an eth_subscribe("newHeads") WebSocket, or polling.

The subscription has its own connection and thread: a socket shared with request traffic delays
notifications (~44 ms on anvil), and the main loop only needs to be woken up. Headers received
here are hints; the indexer still checks every block's parent hash against what it stored.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

log = logging.getLogger(__name__)


class HeadWatcher:
    """Wakes the indexer when a new block arrives.

    `wait(timeout)` returns the newest header seen by the subscription (or None when polling or
    when nothing arrived within `timeout`).
    """

    def __init__(self, ws_url: str | None, *, poll_interval: float = 0.1) -> None:
        self.ws_url = ws_url
        self.poll_interval = poll_interval
        self._cond = threading.Condition()
        self._latest: dict[str, Any] | None = None
        self._seq = 0
        self._seen_seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False

    def start(self) -> None:
        """Start the subscription thread (no-op without a WebSocket URL)."""
        if self.ws_url and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="newheads", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the subscription thread."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until a head newer than the last returned one arrives, or the timeout passes.

        Without a live subscription this sleeps the poll interval (the caller then polls).
        """
        if timeout is None:
            timeout = self.poll_interval
        if not self.connected:
            # Poll at the configured interval while the socket is down (or not configured).
            self._stop.wait(min(timeout, self.poll_interval))
            return None
        with self._cond:
            if self._seq == self._seen_seq:
                self._cond.wait(timeout)
            if self._seq == self._seen_seq:
                return None
            self._seen_seq = self._seq
            return self._latest

    def _run(self) -> None:
        from websockets.sync.client import connect

        delay = 0.2
        assert self.ws_url is not None
        while not self._stop.is_set():
            try:
                with connect(self.ws_url, open_timeout=5, max_size=None, compression=None) as ws:
                    ws.send(
                        orjson.dumps(
                            {
                                "jsonrpc": "2.0",
                                "id": 1,
                                "method": "eth_subscribe",
                                "params": ["newHeads"],
                            }
                        )
                    )
                    answer = orjson.loads(ws.recv(timeout=5))
                    if "error" in answer:
                        log.warning("newHeads subscription refused: %s", answer["error"])
                        return
                    self.connected = True
                    delay = 0.2
                    log.info("subscribed to newHeads on %s", self.ws_url)
                    while not self._stop.is_set():
                        try:
                            message = ws.recv(timeout=1.0)
                        except TimeoutError:
                            continue
                        data = orjson.loads(message)
                        header = data.get("params", {}).get("result")
                        if isinstance(header, dict) and "number" in header:
                            with self._cond:
                                self._latest = header
                                self._seq += 1
                                self._cond.notify_all()
            except Exception as exc:  # any socket failure: fall back to polling, reconnect
                if self._stop.is_set():
                    break
                log.warning("newHeads subscription lost (%s); polling meanwhile", exc)
            finally:
                self.connected = False
                with self._cond:
                    self._cond.notify_all()
            self._stop.wait(delay)
            delay = min(delay * 2, 10.0)
        self.connected = False

    def sleep(self, seconds: float) -> None:
        """Sleep, returning early when stopped."""
        self._stop.wait(seconds)


def wait_until(predicate: Any, timeout: float, interval: float = 0.01) -> bool:
    """Poll `predicate` until true or timeout (a helper for tests and scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
