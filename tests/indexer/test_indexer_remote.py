"""The indexer over a hosted-RPC-like endpoint: caps refused and split, throttling waited out,
ranges fetched several at a time and applied in order, few calls per log."""

from __future__ import annotations

import httpx
import orjson
from support.emitter import address
from support.indexer import active_entitlements, applied_count, backend_sink, make_indexer

from backend.devtools.rpc_proxy import ProxyConfig, RpcProxy
from indexer.fetcher import Header
from indexer.rpc import RangeTooLargeError, RpcClient

ZERO = "0x" + "00" * 20
PROVIDER = address(0xA11CE)


def _get_logs(url: str, start: int, end: int) -> dict:
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "eth_getLogs",
        "params": [{"fromBlock": hex(start), "toBlock": hex(end)}],
    }
    return httpx.post(url, content=orjson.dumps(body)).json()


def test_the_proxy_refuses_like_hosted_providers_and_counts_calls(anvil, emitter):
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Capped course")
    emitter.tx("purchases", 1, address(1), 100, 30, ZERO, 10**15, 10**13, gas=2_000_000)
    head = anvil.block_number()
    proxy = RpcProxy(anvil.url, ProxyConfig(delay=0, max_block_range=5, max_logs=10)).start()
    try:
        too_long = _get_logs(proxy.url, 0, 100)
        assert too_long["error"]["code"] == -32600
        assert "[0x0, 0x4]" in too_long["error"]["message"]  # the range that would work
        too_many = _get_logs(proxy.url, head - 1, head)
        assert too_many["error"]["code"] == -32005
        assert "more than 10 results" in too_many["error"]["message"]
        assert head <= 5 and len(_get_logs(proxy.url, 0, head - 1)["result"]) == 1  # the course
        assert proxy.counts["eth_getLogs"] == 3 and proxy.refused == 2

        # The indexer's client reads them as "ask for fewer blocks", and which kind.
        client = RpcClient(proxy.url)
        for start, end, caps_blocks in ((0, 100, True), (head - 1, head, False)):
            try:
                client.call("eth_getLogs", [{"fromBlock": hex(start), "toBlock": hex(end)}])
            except RangeTooLargeError as exc:
                assert exc.caps_blocks is caps_blocks
            else:
                raise AssertionError("not refused")
        client.close()
    finally:
        proxy.stop()


def test_throttled_requests_get_429_and_are_retried(anvil):
    proxy = RpcProxy(anvil.url, ProxyConfig(delay=0, rate_limit=5)).start()
    try:
        client = RpcClient(proxy.url, backoff=0.05, retries=10)
        numbers = [client.block_number() for _ in range(12)]  # more than 5 calls per second
        assert numbers == [numbers[0]] * 12
        assert proxy.throttled > 0
        client.close()
    finally:
        proxy.stop()


def test_backfill_through_capped_throttled_proxy_applies_everything_once(db, anvil, emitter):
    """Dense blocks (40 logs) and sparse stretches, ranges capped at 50 blocks and 100 logs,
    10 calls/s allowed: every purchase applied once, in order, with few calls per log."""
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Remote course")
    for i in range(12):
        anvil.mine(17)
        emitter.tx(
            "purchases", 1, address(1), 1_000 + 40 * i, 40, ZERO, 10**15, 10**13, gas=2_000_000
        )
    anvil.mine(5)
    config = ProxyConfig(delay=0.01, max_block_range=50, max_logs=100, rate_limit=40)
    proxy = RpcProxy(anvil.url, config).start()
    try:
        ix = make_indexer(
            db,
            anvil,
            [emitter.address],
            emitter.deploy_block,
            sink=backend_sink(anvil.chain_id),
            rpc_url=proxy.url,
            reorg_window=4,
            initial_range=400,
            fetch_concurrency=4,
        )
        ix.rpc.retries = 20
        ix.catch_up()
        assert ix.cp is not None and ix.cp.number == anvil.block_number()
    finally:
        proxy.stop()
    assert applied_count(db, "CoursePurchased") == 480
    assert len(active_entitlements(db)) == 480
    assert proxy.refused > 0  # the caps were met, and split around
    assert ix.fetcher.sizer.max == 50  # the block-range cap was learned
    # No per-block requests: a range costs a getLogs and two headers.
    assert proxy.counts["eth_getLogs"] < 40


def test_polling_sleeps_through_most_of_the_chains_block_time(db, anvil, emitter):
    ix = make_indexer(db, anvil, [emitter.address], emitter.deploy_block, poll_interval=0.1)
    assert ix.poll_delay() == 0.1  # nothing learned yet
    for n in range(6):  # a 12-second chain
        head = Header(100 + n, f"0x{n:064x}", f"0x{n - 1:064x}", 1_700_000_000 + 12 * n)
        ix._observe_head(head)
        ix.head = head
    assert 9.0 < ix.poll_delay() <= 12.0  # the next block is ~12 s away: no call until 80 %
    ix._head_seen_at -= 10.0  # 10 s after the last block: a block is due
    assert ix.poll_delay() == 0.1
    ix.settings.poll_by_block_time = False
    ix._head_seen_at += 10.0
    assert ix.poll_delay() == 0.1


def test_a_chain_mining_on_demand_is_polled_at_the_poll_interval(db, anvil, emitter):
    ix = make_indexer(db, anvil, [emitter.address], emitter.deploy_block, poll_interval=0.1)
    for n in range(6):  # several blocks in the same second, as a dev node mines them
        head = Header(100 + n, f"0x{n:064x}", f"0x{n - 1:064x}", 1_700_000_000 + n // 4)
        ix._observe_head(head)
        ix.head = head
    assert ix.poll_delay() == 0.1
