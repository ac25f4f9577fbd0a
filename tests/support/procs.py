"""Free ports and polling, for tests that start servers and wait for background work."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
# The port `scripts/dev` gives anvil: never hand it to a test (a developer's node may hold it).
DEV_RPC_PORT = 8545


def free_port() -> int:
    """A free TCP port on the loopback interface (never the dev stack's RPC port)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != DEV_RPC_PORT:
            return port


def wait_for(check: Callable[[], T | None], what: str = "condition", timeout: float = 60.0) -> T:
    """Poll `check()` until it returns something truthy; fail naming `what` and the last value.

    Exceptions inside `check` are not swallowed: a 500 from the API is a failure, not a "not yet".
    """
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}"
            )
        time.sleep(0.2)
