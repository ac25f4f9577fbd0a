"""Small core pieces: addresses, amounts, rate limiters, deployment files, tx encoding."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from backend.chain.deployment import deployment_or_empty, load_deployment
from backend.core.ratelimit import MemoryRateLimiter, RedisRateLimiter
from backend.core.schemas import Amount
from backend.core.security import InvalidAddressError, checksum_address, origin_of
from backend.core.text import unprintable_offset

pytestmark = pytest.mark.anyio

CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def test_checksum_address_accepts_one_case_and_valid_checksums_only() -> None:
    assert checksum_address(CHECKSUMMED.lower()) == CHECKSUMMED
    assert checksum_address("0x" + CHECKSUMMED[2:].upper()) == CHECKSUMMED
    assert checksum_address(CHECKSUMMED) == CHECKSUMMED
    for bad in ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "0x123", CHECKSUMMED[2:], ""):
        with pytest.raises(InvalidAddressError):
            checksum_address(bad)


class _Priced(BaseModel):
    amount: Amount


@pytest.mark.parametrize("value", ["0", "1000000", str(2**256 - 1), 42])
def test_amounts_are_integers_and_serialize_as_strings(value: object) -> None:
    model = _Priced(amount=value)  # type: ignore[arg-type]
    assert model.amount == int(value)  # type: ignore[call-overload]
    assert json.loads(model.model_dump_json()) == {"amount": str(int(value))}  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [1.5, 1.0, "1.5", "-1", "1e18", True, str(2**256), " 1", None])
def test_amounts_refuse_floats_negatives_and_garbage(value: object) -> None:
    with pytest.raises(ValidationError):
        _Priced(amount=value)  # type: ignore[arg-type]


def test_origin_normalizes_case_and_default_ports() -> None:
    assert origin_of("HTTPS://Example.com:443/path") == "https://example.com"
    assert origin_of("http://localhost:8000/x") == "http://localhost:8000"


async def test_memory_rate_limiter_allows_a_burst_then_refuses_per_key() -> None:
    limiter = MemoryRateLimiter(rate=3, per=60)
    results = [(await limiter.allow("a"))[0] for _ in range(4)]
    assert results == [True, True, True, False]
    allowed, wait = await limiter.allow("a")
    assert not allowed and 0 < wait <= 20
    assert (await limiter.allow("b"))[0] is True


async def test_redis_rate_limiter_shares_the_budget_and_fails_open() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:6379/0", rate=2, per=60)
    key = f"test-{uuid.uuid4().hex}"
    try:
        first = await limiter.allow(key)
    except Exception:  # pragma: no cover - the limiter itself never raises
        pytest.fail("RedisRateLimiter.allow raised")
    try:
        await limiter.client.ping()
    except Exception:
        pytest.skip("no Redis on 127.0.0.1:6379")
    other_process = RedisRateLimiter("redis://127.0.0.1:6379/0", rate=2, per=60)
    assert first[0] is True
    assert (await other_process.allow(key))[0] is True
    assert (await limiter.allow(key))[0] is False
    await limiter.client.aclose()
    await other_process.client.aclose()
    down = RedisRateLimiter("redis://127.0.0.1:1/0", rate=1, per=60)
    assert (await down.allow(key))[0] is True
    assert (await down.allow(key))[0] is True


def test_deployment_file_gives_market_certificate_and_tokens(tmp_path: Path) -> None:
    path = tmp_path / "local.json"
    path.write_text(
        json.dumps(
            {
                "chainId": 31337,
                "contracts": {
                    "CourseMarket": {"address": CHECKSUMMED.lower()},
                    "CourseCertificate": {"address": "0x" + "11" * 20},
                    "USDC": {"address": "0x" + "22" * 20, "symbol": "USDC", "decimals": 6},
                },
            }
        )
    )
    deployment = load_deployment(path)
    assert deployment.chain_id == 31337 and deployment.market == CHECKSUMMED
    assert [(t.symbol, t.decimals) for t in deployment.tokens] == [("USDC", 6)]
    assert deployment_or_empty(tmp_path / "missing.json").market is None
    (tmp_path / "broken.json").write_text("{")
    assert deployment_or_empty(tmp_path / "broken.json").market is None


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("Solidity from Zero", None),
        ("Ünïcödé 中文 🎓 \ue000 \ufffd \U0010ffff", None),
        ("a\tb", 1),
        ("\n", 0),
        ("é\u0085", 2),
        ("x\x7f", 1),
        ("🎓\ufffe", 4),
        ("\uffff", 0),
    ],
)
def test_unprintable_offset_follows_the_contracts_text_rule(text: str, offset: int | None) -> None:
    assert unprintable_offset(text) == offset
