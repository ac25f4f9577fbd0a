"""Course titles always render: the market accepts exactly the printable UTF-8 titles, and every
accepted title yields a `tokenURI` whose JSON parses and whose SVG parses as XML.

Titles go to the contract as raw bytes (the ABI encodes `string` exactly like `bytes`), so the
property test also sends invalid UTF-8, which no Python `str` can carry.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import ape
import pytest
from eth_abi import decode, encode
from eth_utils import keccak
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from market_helpers import DAY, GRANT, order_ref

RECORD = keccak(text="record:titles")[:28]
MAX_TITLE = 100
CREATE = keccak(text="createCourse(string,uint32)")[:4]


def printable_offset(raw: bytes) -> int | None:
    """The oracle: None if `raw` is printable UTF-8 (as the contract defines it), else the
    offset of the first offending character or byte sequence."""
    try:
        text, broken_at = raw.decode("utf-8", errors="strict"), None
    except UnicodeDecodeError as exc:
        # `start` is where the sequence that breaks starts; what comes before it decodes.
        text, broken_at = raw[: exc.start].decode(), exc.start
    offset = 0
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F or code in (0xFFFE, 0xFFFF):
            return offset
        offset += len(char.encode())
    return broken_at


def create_raw(web3, market, seller, raw: bytes) -> dict:
    """`createCourse(raw, 1 day)` as an eth_call and, when it would succeed, as a transaction."""
    data = "0x" + (CREATE + encode(["bytes", "uint32"], [raw, DAY])).hex()
    call = {"from": seller.address, "to": market.address, "data": data}
    try:
        web3.eth.call(call)
    except Exception as exc:  # the revert data says which error
        return {"reverted": exc}
    tx_hash = web3.eth.send_transaction({**call, "gas": 1_000_000})
    receipt = web3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt.status == 1
    return {"course": market.courseCount()}


def revert_data(exc: Exception) -> bytes:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if data is None and exc.args:
        data = exc.args[-1] if isinstance(exc.args[-1], str) else None
    assert isinstance(data, str) and data.startswith("0x"), repr(exc)
    return bytes.fromhex(data[2:])


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def rendered(certificate, token_id: int) -> tuple[dict, ET.Element]:
    uri = certificate.tokenURI(token_id)
    meta = json.loads(base64.b64decode(uri.removeprefix("data:application/json;base64,")))
    image = meta["image"].removeprefix("data:image/svg+xml;base64,")
    return meta, ET.fromstring(base64.b64decode(image))


@pytest.mark.parametrize(
    ("title", "offset"),
    [
        ("Tab\there", 3),
        ("Line\nbreak", 4),
        ("\x00", 0),
        ("Delete \x7f", 7),
        ("C1 \u0085 control", 3),
        ("ünï \ufffe", 6),
        ("\uffff", 0),
    ],
)
def test_titles_with_forbidden_characters_revert(market, provider, title, offset):
    with ape.reverts(market.InvalidTitle, offset=offset):
        market.createCourse(title, DAY, sender=provider)


@pytest.mark.parametrize(
    ("raw", "offset"),
    [
        (b"ok \xff", 3),  # never a UTF-8 byte
        (b"\x80abc", 0),  # a continuation byte first
        (b"ab\xc0\xaf", 2),  # an overlong "/"
        (b"\xe0\x80\xaf", 0),  # an overlong three-byte form
        (b"\xed\xa0\x80", 0),  # a surrogate
        (b"\xf4\x90\x80\x80", 0),  # above U+10FFFF
        (b"cut \xe2\x82", 4),  # a truncated sequence
        (b"x\xe2(\xa1", 1),  # a bad continuation
    ],
)
def test_invalid_utf8_titles_revert(market, provider, chain, raw, offset):
    result = create_raw(chain.provider.web3, market, provider, raw)
    assert "reverted" in result
    data = revert_data(result["reverted"])
    assert data[:4] == selector("InvalidTitle(uint256)")
    assert decode(["uint256"], data[4:]) == (offset,)
    assert printable_offset(raw) == offset


def test_every_script_and_emoji_is_accepted(market, provider):
    title = "Ünïcödé Ελληνικά 中文 العربية עברית 🎓 — R&D <x>"
    market.createCourse(title, DAY, sender=provider)
    assert market.courseTitle(market.courseCount()) == title


@pytest.fixture(scope="module")
def web3(chain):
    return chain.provider.web3


titles = st.one_of(
    st.binary(min_size=0, max_size=MAX_TITLE + 4),
    st.text(max_size=40).map(lambda text: text.encode()[: MAX_TITLE + 4]),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF), max_size=30).map(
        str.encode
    ),
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=titles)
@example(raw=b'"}],"x":"\\')  # JSON delimiters
@example(raw=b"]]></text><script>x</script>")  # XML delimiters
@example(raw="\U0010ffff \ufffd \ue000 \ud7ff".encode())  # the edges XML allows
def test_accepted_titles_render_and_rejected_ones_revert(
    market, certificate, operator, issuer, provider, learner, web3, raw
):
    result = create_raw(web3, market, provider, raw)
    expected = printable_offset(raw)
    if not raw:
        assert revert_data(result["reverted"])[:4] == selector("EmptyTitle()")
        return
    if len(raw) > MAX_TITLE:
        assert revert_data(result["reverted"])[:4] == selector("TitleTooLong(uint256)")
        return
    if expected is not None:
        data = revert_data(result["reverted"])
        assert data[:4] == selector("InvalidTitle(uint256)")
        assert decode(["uint256"], data[4:]) == (expected,), raw
        return
    assert "course" in result, result
    course = result["course"]
    market.grantAccess(course, learner, GRANT, order_ref(f"titles:{course}"), sender=operator)
    certificate.mint(learner, course, RECORD, sender=issuer)
    meta, svg = rendered(certificate, certificate.tokenIdFor(learner, course))
    title = raw.decode()
    assert meta["attributes"][0] == {"trait_type": "Course", "value": title}
    texts = ["".join(node.itertext()) for node in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert title in texts
