"""Token-bucket rate limiting per client key: in memory by default, in Redis when configured
(so several API processes share one budget)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

logger = logging.getLogger(__name__)


class RateLimiter(Protocol):
    """Decides whether one more request from `key` is allowed now."""

    async def allow(self, key: str) -> tuple[bool, float]:
        """(allowed, seconds until a token is available)."""
        ...


class MemoryRateLimiter:
    """A token bucket per key in this process: `rate` requests per `per` seconds, burst `rate`."""

    def __init__(self, rate: int, per: float = 60.0, max_keys: int = 100_000) -> None:
        self.capacity = float(max(rate, 1))
        self.refill = self.capacity / per
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def allow(self, key: str) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                # Bounded memory: forget the fullest buckets' owners (they are idle).
                self._buckets.clear()
            self._buckets[key] = (tokens, now)
        wait = 0.0 if allowed else (1.0 - tokens) / self.refill
        return allowed, wait


# KEYS[1] bucket key; ARGV: capacity, refill per second, now (seconds), ttl (seconds).
_REDIS_BUCKET = """
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * refill)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    """The same token bucket kept in Redis (atomic Lua script); fails open if Redis is down."""

    def __init__(self, url: str, rate: int, per: float = 60.0, prefix: str = "tuition:rl:") -> None:
        import redis.asyncio as redis_asyncio

        self.client = redis_asyncio.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.capacity = float(max(rate, 1))
        self.refill = self.capacity / per
        self.ttl = int(per) + 1
        self.prefix = prefix
        self.script = self.client.register_script(_REDIS_BUCKET)

    async def allow(self, key: str) -> tuple[bool, float]:
        try:
            allowed, tokens = await self.script(
                keys=[self.prefix + key],
                args=[self.capacity, self.refill, time.time(), self.ttl],
            )
        except Exception as exc:  # availability over strictness for a login throttle
            logger.warning("rate limiter unavailable, allowing request: %s", exc)
            return True, 0.0
        if int(allowed):
            return True, 0.0
        return False, (1.0 - float(tokens)) / self.refill


def make_rate_limiter(redis_url: str | None, rate: int) -> RateLimiter:
    """Redis-backed when a Redis URL is configured, else in-memory."""
    if redis_url:
        return RedisRateLimiter(redis_url, rate)
    return MemoryRateLimiter(rate)
