"""A small JSON-RPC client: raw requests over one HTTP/1.1 keep-alive connection, orjson parsing.

web3.py's per-call middleware and formatting cost more than the node's own work at the rates the
indexer fetches logs; this client sends exactly the requests it is told to and hands back the
parsed JSON untouched.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx
import orjson

log = logging.getLogger(__name__)

# Messages providers use when an eth_getLogs range must be split (geth, erigon, Alchemy, Infura,
# QuickNode, Ankr, anvil...). Matched case-insensitively against the error message.
_RANGE_ERROR_PATTERNS = (
    "too many results",
    "query returned more than",
    "block range",
    "range is too large",
    "range too large",
    "exceed",  # "exceeds the limit", "limit exceeded", "response size exceeded"
    "too large",
    "too many blocks",
    "log response size",
    "timeout",
    "timed out",
    "max results",
    "result limit",
)
# Infura/Alchemy suggest a range that fits: "Try with this block range [0x1, 0x2]".
_SUGGESTED_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")


class RpcError(Exception):
    """An error answer from the node."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class RangeTooLargeError(RpcError):
    """eth_getLogs must be asked for a smaller block range."""

    @property
    def caps_blocks(self) -> bool:
        """Whether the provider caps the block range itself ("up to a 10000 block range"), as
        opposed to the number of results ("query returned more than 10000 results")."""
        lowered = self.message.lower()
        return "block range" in lowered and "result" not in lowered

    @property
    def suggested_span(self) -> int | None:
        """The number of blocks the provider suggests, when it says."""
        match = _SUGGESTED_RANGE.search(self.message)
        if match is None:
            return None
        start, end = (int(x, 16) for x in match.groups())
        return max(1, end - start + 1)


class RpcUnavailableError(Exception):
    """The node could not be reached or kept failing (transport errors, HTTP 5xx)."""


def is_range_error(message: str, code: int | None) -> bool:
    """Whether an eth_getLogs error means "ask for fewer blocks"."""
    if code == -32005:  # "limit exceeded" (EIP-1474)
        return True
    lowered = message.lower()
    if "rate" in lowered and "limit" in lowered:  # throttling, not a range problem
        return False
    return any(p in lowered for p in _RANGE_ERROR_PATTERNS)


class RpcClient:
    """Synchronous JSON-RPC over HTTP with retries on transport errors."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self._ids = itertools.count(1)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            headers={"content-type": "application/json"},
            # Backfill keeps several ranges in flight (TUITION_INDEXER_FETCH_CONCURRENCY).
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            transport=transport,
        )
        self.requests = 0

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _post(self, payload: Any, what: str) -> Any:
        body = orjson.dumps(payload)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self.requests += 1
                resp = self._client.post(self.url, content=body)
                if resp.status_code >= 500 or resp.status_code == 429:
                    raise httpx.HTTPStatusError(
                        f"HTTP {resp.status_code}", request=resp.request, response=resp
                    )
                return orjson.loads(resp.content)
            except httpx.TimeoutException as exc:
                # A getLogs timeout is the node saying the range is too big: let the caller
                # shrink it rather than retry the same request.
                if what == "eth_getLogs":
                    raise RangeTooLargeError(what, None, f"timeout: {exc}") from exc
                err: Exception = exc
            except (httpx.TransportError, httpx.HTTPStatusError, orjson.JSONDecodeError) as exc:
                err = exc
            if attempt < self.retries:
                log.warning("rpc %s failed (%s); retrying in %.1fs", what, err, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise RpcUnavailableError(f"{what}: {err}") from err

    @staticmethod
    def _result(method: str, answer: Any) -> Any:
        if not isinstance(answer, dict):
            raise RpcError(method, None, f"malformed answer {answer!r:.200}")
        error = answer.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = str(error.get("message", error) if isinstance(error, dict) else error)
            data = error.get("data") if isinstance(error, dict) else None
            if method == "eth_getLogs" and is_range_error(message, code):
                raise RangeTooLargeError(method, code, message, data)
            raise RpcError(method, code, message, data)
        if "result" not in answer:
            raise RpcError(method, None, f"answer without result {answer!r:.200}")
        return answer["result"]

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One request; raises RpcError on an error answer."""
        answer = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)},
            method,
        )
        return self._result(method, answer)

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several requests in one JSON-RPC batch; results in call order.

        Raises the first error (by call order) if any call failed.
        """
        if not calls:
            return []
        if len(calls) == 1:
            return [self.call(*calls[0])]
        first = next(self._ids)
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        for _ in range(len(calls) - 1):
            next(self._ids)
        what = calls[0][0] if len({m for m, _ in calls}) == 1 else "batch"
        answers = self._post(payload, what)
        if isinstance(answers, dict):  # some nodes answer a whole failed batch with one error
            return [self._result(calls[0][0], answers)]
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results = []
        for i, (method, _) in enumerate(calls):
            answer = by_id.get(first + i)
            if answer is None:
                raise RpcError(method, None, "missing from batch answer")
            results.append(self._result(method, answer))
        return results

    # ----------------------------------------------------------------- conveniences

    def chain_id(self) -> int:
        """eth_chainId."""
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        """eth_blockNumber."""
        return int(self.call("eth_blockNumber"), 16)

    def header(self, number: int | str) -> dict[str, Any] | None:
        """The block (without transactions) at a number or tag; None if the node lacks it."""
        tag = hex(number) if isinstance(number, int) else number
        result: dict[str, Any] | None = self.call("eth_getBlockByNumber", [tag, False])
        return result
