"""A hosted-RPC-like endpoint in front of a local node, for tests and benchmarks.

Hosted providers answer in tens of milliseconds, cap `eth_getLogs` by block range and by result
count (with an error that suggests a range that fits), throttle with HTTP 429, and bill every
call. This proxy does the same in front of anvil:

- every HTTP request waits `delay` seconds (in its own thread: requests in flight overlap, as
  they do over a network);
- `eth_getLogs` over more than `max_block_range` blocks is refused like Alchemy refuses it, and
  an answer of more than `max_logs` logs is replaced by Infura's error, both with a suggested
  block range;
- over `rate_limit` calls per second (a token bucket of one second), the request gets HTTP 429;
- `counts` holds the calls by method (each call of a batch counts), `http_requests` the HTTP
  requests, `throttled` the 429s and `refused` the capped `eth_getLogs` calls.

Run alone: `python scripts/rpc_proxy.py --upstream http://127.0.0.1:8545 --port 8546`.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson


@dataclass
class ProxyConfig:
    """How remote the proxy behaves."""

    delay: float = 0.05
    max_block_range: int | None = 10_000
    max_logs: int | None = 10_000
    rate_limit: float | None = None


class RpcProxy:
    """Serves 127.0.0.1:`port` (a free one by default), forwarding to `upstream`.

    Args:
        upstream: The node's HTTP JSON-RPC URL.
        config: Latency, caps and rate limit.
        port: Where to listen (0: a free port).
    """

    def __init__(self, upstream: str, config: ProxyConfig | None = None, port: int = 0) -> None:
        self.upstream = upstream
        self.config = config or ProxyConfig()
        self.counts: collections.Counter[str] = collections.Counter()
        self.http_requests = 0
        self.throttled = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._tokens = self.config.rate_limit or 0.0
        self._refilled = time.monotonic()
        self._client = httpx.Client(
            timeout=60,
            headers={"content-type": "application/json"},  # anvil refuses anything else
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    status, answer = proxy.handle(body)
                except Exception as exc:  # the node failed: a gateway error, as providers give
                    status, answer = 502, orjson.dumps(_error(None, -32603, f"upstream: {exc}"))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                if status == 429:
                    self.send_header("retry-after", "1")
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: benchmarks send thousands of requests

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> RpcProxy:
        """Serve in a thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._client.close()

    def reset_counts(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.counts.clear()
            self.http_requests = self.throttled = self.refused = 0

    @property
    def calls(self) -> int:
        """Every call counted so far (what a provider bills)."""
        return sum(self.counts.values())

    # ------------------------------------------------------------------ one HTTP request

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """The status and body answering one HTTP request."""
        time.sleep(self.config.delay)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 200, orjson.dumps(_error(None, -32700, "parse error"))
        calls = payload if isinstance(payload, list) else [payload]
        with self._lock:
            self.http_requests += 1
            if not self._take(len(calls)):
                self.throttled += 1
                return 429, orjson.dumps(_error(None, 429, "Too Many Requests: rate limit"))
            for call in calls:
                self.counts[str(call.get("method"))] += 1
        answers: list[Any] = [None] * len(calls)
        forward: list[int] = []
        for i, call in enumerate(calls):
            refusal = self._range_refusal(call)
            if refusal is not None:
                answers[i] = refusal
            else:
                forward.append(i)
        if forward:
            upstream = self._client.post(
                self.upstream, content=orjson.dumps([calls[i] for i in forward])
            ).json()
            if isinstance(upstream, dict):  # one error for the whole batch
                upstream = [{**upstream, "id": calls[i].get("id")} for i in forward]
            by_id = {a.get("id"): a for a in upstream if isinstance(a, dict)}
            for i in forward:
                answers[i] = self._capped(calls[i], by_id.get(calls[i].get("id")))
        with self._lock:
            self.refused += sum(
                1
                for call, answer in zip(calls, answers, strict=True)
                if call.get("method") == "eth_getLogs" and "error" in (answer or {})
            )
        result = answers if isinstance(payload, list) else answers[0]
        return 200, orjson.dumps(result)

    def _take(self, n: int) -> bool:
        """Spend `n` calls from the rate limit's bucket (under the lock)."""
        rate = self.config.rate_limit
        if rate is None:
            return True
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < n:
            return False
        self._tokens -= n
        return True

    def _range_refusal(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """Alchemy's answer to an `eth_getLogs` over too many blocks, else None."""
        cap = self.config.max_block_range
        if cap is None or call.get("method") != "eth_getLogs":
            return None
        params = call.get("params") or [{}]
        flt = params[0] if params and isinstance(params[0], dict) else {}
        if "blockHash" in flt:
            return None
        start, end = (
            self._block(flt.get("fromBlock", "latest")),
            self._block(flt.get("toBlock", "latest")),
        )
        if end - start + 1 <= cap:
            return None
        return _error(
            call.get("id"),
            -32600,
            f"You can make eth_getLogs requests with up to a {cap} block range. Based on your "
            f"parameters, this block range should work: [{hex(start)}, {hex(start + cap - 1)}]",
        )

    def _capped(self, call: dict[str, Any], answer: Any) -> Any:
        """Infura's error instead of an `eth_getLogs` answer with too many logs."""
        cap = self.config.max_logs
        if cap is None or call.get("method") != "eth_getLogs" or not isinstance(answer, dict):
            return answer
        logs = answer.get("result")
        if not isinstance(logs, list) or len(logs) <= cap:
            return answer
        flt = (call.get("params") or [{}])[0]
        start = self._block(flt.get("fromBlock", "latest"))
        last_fitting = max(start, int(logs[cap]["blockNumber"], 16) - 1)
        return _error(
            call.get("id"),
            -32005,
            f"query returned more than {cap} results. Try with this block range "
            f"[{hex(start)}, {hex(last_fitting)}].",
        )

    def _block(self, tag: Any) -> int:
        if isinstance(tag, str) and tag.startswith("0x"):
            return int(tag, 16)
        answer = self._client.post(
            self.upstream,
            content=orjson.dumps(
                {"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []}
            ),
        ).json()
        return int(answer["result"], 16)


def _error(call_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "error": {"code": code, "message": message}}
