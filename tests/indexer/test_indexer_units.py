"""Pure units: decoding against eth_abi, RPC error classification, range sizing."""

from __future__ import annotations

import eth_abi
import httpx
import orjson
import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.decoding import DecodeError, LogDecoder, json_safe
from indexer.fetcher import RangeSizer
from indexer.rpc import RangeTooLargeError, RpcClient, RpcError, is_range_error

DEC = LogDecoder.default()
PURCHASED = (
    "0x"
    + keccak(text="CoursePurchased(uint256,address,address,address,uint256,uint256,bytes32)").hex()
)
CREATED = "0x" + keccak(text="CourseCreated(uint256,address,uint32,string)").hex()

addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
uint256 = st.integers(min_value=0, max_value=2**256 - 1)


def word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def raw_log(topics: list[str], data: bytes) -> dict:
    return {
        "address": "0x" + "11" * 20, "topics": topics, "data": "0x" + data.hex(),
        "blockNumber": "0x10", "blockHash": "0x" + "aa" * 32, "transactionHash": "0x" + "bb" * 32,
        "transactionIndex": "0x0", "logIndex": "0x3", "removed": False,
    }  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(course=uint256, buyer=addresses, recipient=addresses, token=addresses, amount=uint256,
       fee=uint256, ref=st.binary(min_size=32, max_size=32))  # fmt: skip
def test_purchase_decodes_like_eth_abi(course, buyer, recipient, token, amount, fee, ref):
    data = eth_abi.encode(["address", "uint256", "uint256", "bytes32"], [token, amount, fee, ref])
    topics = [PURCHASED, word(course), word(int(buyer, 16)), word(int(recipient, 16))]
    lg = DEC.decode(raw_log(topics, data))
    assert lg is not None and lg.event == "CoursePurchased"
    assert lg.args == {
        "courseId": course, "buyer": buyer, "recipient": recipient, "token": token,
        "amount": amount, "fee": fee, "orderRef": "0x" + ref.hex(),
    }  # fmt: skip
    assert (lg.block_number, lg.log_index) == (16, 3)


@settings(max_examples=40, deadline=None)
@given(title=st.text(max_size=120), window=st.integers(0, 2**32 - 1))
def test_dynamic_string_decodes(title, window):
    data = eth_abi.encode(["uint32", "string"], [window, title])
    lg = DEC.decode(raw_log([CREATED, word(7), word(1)], data))
    assert lg is not None and lg.args["title"] == title and lg.args["refundWindow"] == window


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t, d: (t[:-1], d),  # a topic missing (e.g. a same-signature event, other indexing)
        lambda t, d: (t, d[:-2]),  # data too short
        lambda t, d: ([t[0], t[1], "0x" + "ff" * 32, t[3]], d),  # dirty address padding
        lambda t, d: (t, "0x" + "ff" * 12 + d[26:]),  # dirty address padding in data
    ],
)
def test_malformed_logs_are_rejected(mutate):
    data = eth_abi.encode(["address", "uint256", "uint256", "bytes32"],
                          ["0x" + "22" * 20, 1, 2, b"\0" * 32]).hex()  # fmt: skip
    topics = [PURCHASED, word(1), word(2), word(3)]
    t, d = mutate(topics, "0x" + data)
    with pytest.raises(DecodeError):
        DEC.decode({**raw_log(t, b""), "data": d})


def test_ignored_and_unknown_topics():
    transfer = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
    assert DEC.decode(raw_log([transfer, word(0), word(1), word(2)], b"")) is None
    with pytest.raises(DecodeError):
        DEC.decode(raw_log(["0x" + "99" * 32], b""))


def test_json_safe_keeps_big_ints_exact():
    assert json_safe({"a": 2**200, "b": 5, "c": True, "d": "x"}) == {
        "a": str(2**200), "b": 5, "c": True, "d": "x"}  # fmt: skip


@pytest.mark.parametrize(
    ("message", "code", "expected"),
    [
        ("query returned more than 10000 results", -32005, True),
        ("Log response size exceeded. Try with this block range [0x1, 0x2]", -32602, True),
        ("block range is too wide", -32000, True),
        ("exceed maximum block range: 5000", -32000, True),
        ("request timed out", -32000, True),
        ("rate limit exceeded", -32000, False),
        ("execution reverted", 3, False),
        ("whatever", -32005, True),
    ],
)
def test_range_error_classification(message, code, expected):
    assert is_range_error(message, code) is expected


def test_suggested_range_is_used():
    err = RangeTooLargeError("eth_getLogs", -32602, "Try with this block range [0x10, 0x1f].")
    assert err.suggested_span == 16
    sizer = RangeSizer(initial=1000, minimum=1, maximum=100_000, target=10_000)
    sizer.on_range_error(1000, err.suggested_span)
    assert sizer.size == 16


def test_sizer_aims_at_the_target():
    sizer = RangeSizer(initial=100, minimum=1, maximum=100_000, target=10_000)
    sizer.on_success(100, 0, 0.01)
    assert sizer.size == 200  # sparse: grows, at most 2x a step
    sizer.on_success(200, 40_000, 0.5)
    assert sizer.size == 50  # dense: straight to the target density
    sizer.on_range_error(50, None)
    assert sizer.size == 25
    for _ in range(30):
        sizer.on_success(sizer.size, 0, 0.01)
    assert sizer.size == 100_000


def test_rpc_batch_errors_and_transport_retries():
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(503)
        body = orjson.loads(request.content)
        answers = [
            {"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32005, "message": "too many"}}
            if c["method"] == "eth_getLogs"
            else {"jsonrpc": "2.0", "id": c["id"], "result": "0x1"}
            for c in body
        ][::-1]  # out of order, as batch answers may be
        return httpx.Response(200, content=orjson.dumps(answers))

    rpc = RpcClient("http://node", transport=httpx.MockTransport(handler), backoff=0.001)
    assert rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])]) == ["0x1", "0x1"]
    assert calls["n"] == 2  # the 503 was retried
    with pytest.raises(RangeTooLargeError):
        rpc.batch([("eth_chainId", []), ("eth_getLogs", [{}])])
    with pytest.raises(RpcError):
        RpcClient("http://node", transport=httpx.MockTransport(
            lambda r: httpx.Response(200, content=b'{"jsonrpc":"2.0","id":1,"error":{"code":3,'
                                                  b'"message":"execution reverted"}}')
        )).call("eth_call", [])  # fmt: skip
