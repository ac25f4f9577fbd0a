"""Free ports and polling, for tests that start servers and wait for background work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from backend.devstack import free_port

# One way to pick a port, the dev stack's (it never hands out the dev stack's own ports).
__all__ = ["free_port", "wait_for"]

T = TypeVar("T")


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
