"""Sign-In with Ethereum: the happy path, every rejected input, sessions, CSRF, throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from eth_account.messages import _hash_eip191_message, encode_defunct
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from support.api import (
    CHAIN_ID,
    DOMAIN,
    PUBLIC_URL,
    Api,
    FakeChain,
    make_settings,
    sign,
    siwe_text,
)
from support.factories import account, make_course

from backend.app import create_app
from backend.auth.models import AuthNonce, AuthSession
from backend.chain.deployment import Deployment
from backend.core.ratelimit import MemoryRateLimiter
from backend.users.models import User

pytestmark = pytest.mark.anyio

ALICE = account("alice")
MALLORY = account("mallory")


async def _nonce(client: httpx.AsyncClient) -> str:
    response = await client.get("/api/v1/auth/nonce")
    assert response.status_code == 200
    return str(response.json()["nonce"])


async def _verify(client: httpx.AsyncClient, text: str, signature: str) -> httpx.Response:
    return await client.post("/api/v1/auth/verify", json={"message": text, "signature": signature})


def _counts(session: Session) -> tuple[int, int]:
    sessions = session.scalar(select(func.count()).select_from(AuthSession)) or 0
    users = session.scalar(select(func.count()).select_from(User)) or 0
    return sessions, users


async def _assert_rejected(api: Api, response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert "tuition_session" not in response.cookies
    assert await api.query(_counts) == (0, 0)


async def test_nonce_is_fresh_bound_to_the_client_and_valid_ten_minutes(api: Api) -> None:
    async with api.client() as client:
        first = await client.get("/api/v1/auth/nonce")
        second = await client.get("/api/v1/auth/nonce")
    body = first.json()
    assert first.status_code == 200
    assert body["domain"] == DOMAIN and body["uri"] == PUBLIC_URL and body["chainId"] == CHAIN_ID
    assert len(body["nonce"]) >= 16 and body["nonce"].isalnum()
    assert body["nonce"] != second.json()["nonce"]
    issued = datetime.fromisoformat(body["issuedAt"])
    expires = datetime.fromisoformat(body["expiresAt"])
    assert expires - issued == timedelta(minutes=10)
    assert "tuition_siwe" in first.cookies
    assert "httponly" in first.headers["set-cookie"].lower()


async def test_sign_in_opens_a_session_usable_by_cookie_and_by_bearer_token(api: Api) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce)
        response = await _verify(client, text, sign(ALICE, text))
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        assert response.json()["address"] == ALICE.address
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json() == {
        "address": ALICE.address,
        "roles": ["learner"],
        "email": None,
        "displayName": None,
    }
    async with api.client(headers={"Authorization": f"Bearer {token}"}) as bearer:
        assert (await bearer.get("/api/v1/auth/me")).json()["address"] == ALICE.address
    stored = await api.query(lambda s: s.scalars(select(AuthSession.token_hash)).all())
    assert token not in stored and len(stored[0]) == 64  # only the sha256 is stored


async def test_secure_cookie_flag_follows_settings(api: Api) -> None:
    api.settings.cookie_secure = True
    async with api.client() as client:
        response = await client.get("/api/v1/auth/nonce")
    assert "secure" in response.headers["set-cookie"].lower()


async def test_replayed_nonce_is_rejected_and_creates_no_second_session(api: Api) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce)
        assert (await _verify(client, text, sign(ALICE, text))).status_code == 200
        replay = await _verify(client, text, sign(ALICE, text))
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "nonce_used"
    assert await api.query(_counts) == (1, 1)


async def test_signature_with_v_zero_verifies_but_cannot_reuse_the_nonce(api: Api) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce)
        signature = bytes.fromhex(sign(ALICE, text)[2:])
        low_v = "0x" + (signature[:64] + bytes([signature[64] - 27])).hex()
        assert (await _verify(client, text, low_v)).status_code == 200
        again = await _verify(client, text, sign(ALICE, text))
    assert again.json()["error"]["code"] == "nonce_used"


async def test_nonce_issued_to_another_client_is_rejected(api: Api) -> None:
    async with api.client() as victim, api.client() as attacker:
        nonce = await _nonce(victim)
        text = siwe_text(ALICE.address, nonce)
        response = await _verify(attacker, text, sign(ALICE, text))
    await _assert_rejected(api, response, "nonce_mismatch")


async def test_unknown_nonce_is_rejected(api: Api) -> None:
    async with api.client() as client:
        await _nonce(client)
        text = siwe_text(ALICE.address, "neverissued1234")
        response = await _verify(client, text, sign(ALICE, text))
    await _assert_rejected(api, response, "invalid_nonce")


async def test_expired_nonce_is_rejected(api: Api) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        await api.run(
            lambda s: s.execute(
                update(AuthNonce)
                .where(AuthNonce.nonce == nonce)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        )
        text = siwe_text(ALICE.address, nonce)
        response = await _verify(client, text, sign(ALICE, text))
    await _assert_rejected(api, response, "nonce_expired")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"domain": "evil.test"}, "domain_mismatch"),
        ({"domain": "tuition.test:8443"}, "domain_mismatch"),
        ({"uri": "http://evil.test/login"}, "uri_mismatch"),
        ({"uri": "https://tuition.test"}, "uri_mismatch"),
        ({"chain_id": 1}, "chain_mismatch"),
        ({"expiration": datetime.now(UTC) - timedelta(seconds=5)}, "message_expired"),
        ({"not_before": datetime.now(UTC) + timedelta(hours=1)}, "message_not_yet_valid"),
        ({"issued_at": datetime.now(UTC) + timedelta(hours=1)}, "issued_in_future"),
        ({"issued_at": datetime.now(UTC) - timedelta(days=1)}, "issued_before_nonce"),
    ],
)
async def test_message_for_another_site_chain_or_time_is_rejected(
    api: Api, overrides: dict[str, object], code: str
) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce, **overrides)  # type: ignore[arg-type]
        response = await _verify(client, text, sign(ALICE, text))
    await _assert_rejected(api, response, code)


async def test_failed_attempt_leaves_the_nonce_usable(api: Api) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce)
        bad = await _verify(client, text, sign(MALLORY, text))
        assert bad.json()["error"]["code"] == "invalid_signature"
        good = await _verify(client, text, sign(ALICE, text))
    assert good.status_code == 200


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda text, addr: "hello, sign me in", id="not-eip4361"),
        pytest.param(lambda text, addr: text.replace(addr, addr.lower()), id="lowercase-address"),
        pytest.param(
            lambda text, addr: text.replace(addr, addr[:2] + addr[2:].swapcase()), id="bad-checksum"
        ),
        pytest.param(lambda text, addr: text.replace("Version: 1", "Version: 2"), id="version"),
        pytest.param(
            lambda text, addr: text.split("Issued At: ")[0] + "Issued At: 2030-01-01T00:00:00",
            id="naive-issued-at",
        ),
        pytest.param(lambda text, addr: text.replace("Nonce: ", "Nonce: x"), id="tampered"),
    ],
)
async def test_malformed_or_tampered_message_is_rejected(api: Api, mangle: object) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = mangle(siwe_text(ALICE.address, nonce), ALICE.address)  # type: ignore[operator]
        response = await _verify(client, text, sign(ALICE, text))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] in {"malformed_message", "invalid_nonce"}
    assert await api.query(_counts) == (0, 0)


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (lambda sig: sig[:-2], "invalid_signature"),  # truncated
        (lambda sig: sig[:66], "invalid_signature"),  # half
        (lambda sig: sig + "00" * 10, "invalid_signature"),  # trailing bytes
        (lambda sig: "0x" + "zz" * 65, "invalid_signature"),  # not hex
        (lambda sig: sig[:-2] + "ff", "invalid_signature"),  # v = 255
        (lambda sig: "0x" + "00" * 65, "invalid_signature"),  # r = s = 0
        (lambda sig: "0x" + "ff" * 64 + "1b", "invalid_signature"),  # r, s out of range
    ],
)
async def test_corrupted_signature_is_a_401_never_a_500(
    api: Api, signature: object, code: str
) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce)
        response = await _verify(client, text, signature(sign(ALICE, text)))  # type: ignore[operator]
    await _assert_rejected(api, response, code)


async def test_oversized_signature_is_refused_by_validation(api: Api) -> None:
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce)
        response = await _verify(client, text, "0x" + "ab" * 10_000)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_missing_fields_get_the_error_shape(api: Api) -> None:
    async with api.client() as client:
        response = await client.post("/api/v1/auth/verify", json={"message": "x"})
        not_json = await client.post(
            "/api/v1/auth/verify", content=b"{", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert "signature" in response.json()["error"]["message"]
    assert not_json.status_code == 422


async def test_smart_contract_wallet_signs_in_through_eip1271(api: Api) -> None:
    wallet = "0x" + "5afe" * 10
    wallet = wallet[:2] + wallet[2:].lower()
    from backend.core.security import checksum_address

    wallet = checksum_address(wallet)
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(wallet, nonce)
        owner_signature = bytes.fromhex(sign(ALICE, text)[2:]) + b"\x01"  # not a plain ECDSA sig
        digest = _hash_eip191_message(encode_defunct(text=text))
        rejected = await _verify(client, text, "0x" + owner_signature.hex())
        assert rejected.json()["error"]["code"] == "invalid_signature"
        api.chain.wallets[wallet] = {(digest, owner_signature)}
        accepted = await _verify(client, text, "0x" + owner_signature.hex())
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["address"] == wallet


SECOND_CHAIN = 31338


def _two_chains(api: Api) -> FakeChain:
    """Serve a second chain next to the API's own; returns that chain's reader."""
    second = FakeChain()
    api.settings = make_settings(
        api.settings.database_url.get_secret_value(),
        stripe_api_base=api.settings.stripe_api_base,
        networks=[
            {"name": "local", "chain_id": CHAIN_ID, "rpc_url": "http://127.0.0.1:8545"},
            {"name": "local-b", "chain_id": SECOND_CHAIN, "rpc_url": "http://127.0.0.1:8546"},
        ],
    )
    services = api.app.state.services
    services.settings, services.chains = api.settings, {SECOND_CHAIN: second}
    return second


async def test_sign_in_on_any_configured_chain_opens_a_session_of_the_address(api: Api) -> None:
    _two_chains(api)
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce, chain_id=SECOND_CHAIN)
        response = await _verify(client, text, sign(ALICE, text))
        assert response.status_code == 200, response.text
        me = await client.get("/api/v1/auth/me")
        unserved = siwe_text(ALICE.address, await _nonce(client), chain_id=137)
        refused = await _verify(client, unserved, sign(ALICE, unserved))
    assert me.json()["address"] == ALICE.address
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "chain_mismatch"
    assert str(SECOND_CHAIN) in refused.json()["error"]["message"]


async def test_contract_wallet_is_checked_on_the_chain_its_message_names(api: Api) -> None:
    second = _two_chains(api)
    from backend.core.security import checksum_address

    wallet = checksum_address("0x" + "b0b5" * 10)
    async with api.client() as client:
        signed = {}
        for chain_id in (CHAIN_ID, SECOND_CHAIN):
            text = siwe_text(wallet, await _nonce(client), chain_id=chain_id)
            signature = bytes.fromhex(sign(ALICE, text)[2:]) + b"\x01"
            # The wallet is deployed on the second chain only.
            second.wallets.setdefault(wallet, set()).add(
                (_hash_eip191_message(encode_defunct(text=text)), signature)
            )
            signed[chain_id] = await _verify(client, text, "0x" + signature.hex())
    assert signed[CHAIN_ID].json()["error"]["code"] == "invalid_signature"
    assert signed[SECOND_CHAIN].status_code == 200, signed[SECOND_CHAIN].text
    assert api.chain.calls == []  # the API's own chain was never asked about the second's wallet


async def test_chain_outage_during_eip1271_check_is_a_401(api: Api) -> None:
    api.chain.down = True
    async with api.client() as client:
        nonce = await _nonce(client)
        text = siwe_text(ALICE.address, nonce)
        response = await _verify(client, text, sign(MALLORY, text))
    await _assert_rejected(api, response, "invalid_signature")


async def test_logout_revokes_the_session_server_side(api: Api) -> None:
    async with api.client() as client:
        token = await api.sign_in(client, ALICE)
        response = await client.post("/api/v1/auth/logout")
        assert response.json() == {"revoked": True}
        assert (await client.get("/api/v1/auth/me")).status_code == 401
    async with api.client(headers={"Authorization": f"Bearer {token}"}) as bearer:
        response = await bearer.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_expired_session_is_refused(api: Api) -> None:
    async with api.client() as client:
        await api.sign_in(client, ALICE)
        await api.run(
            lambda s: s.execute(
                update(AuthSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        )
        assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_signing_in_again_rotates_the_session(api: Api) -> None:
    async with api.client() as client:
        first = await api.sign_in(client, ALICE)
        second = await api.sign_in(client, ALICE)
    assert first != second
    async with api.client(headers={"Authorization": f"Bearer {first}"}) as old:
        assert (await old.get("/api/v1/auth/me")).status_code == 401
    async with api.client(headers={"Authorization": f"Bearer {second}"}) as new:
        assert (await new.get("/api/v1/auth/me")).status_code == 200


async def test_malformed_authorization_header_is_a_401(api: Api) -> None:
    async with api.client(headers={"Authorization": "Basic abc"}) as client:
        response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_authorization"


async def test_roles_include_provider_for_course_owners_and_admin_from_settings(api: Api) -> None:
    await api.run(make_course, provider=ALICE.address)
    api.app.state.services.admins = frozenset({ALICE.address})
    async with api.user(ALICE) as client:
        roles = (await client.get("/api/v1/auth/me")).json()["roles"]
    assert roles == ["learner", "provider", "admin"]


async def test_profile_can_be_set_and_cleared(api: Api) -> None:
    async with api.user(ALICE) as client:
        response = await client.patch(
            "/api/v1/auth/me", json={"email": "alice@example.com", "displayName": "Alice"}
        )
        assert response.json()["displayName"] == "Alice"
        bad = await client.patch("/api/v1/auth/me", json={"email": "not-an-email"})
        assert bad.status_code == 422
        cleared = await client.patch("/api/v1/auth/me", json={"email": ""})
    assert cleared.json()["email"] is None


async def test_cookie_authenticated_write_from_another_origin_is_refused(api: Api) -> None:
    async with api.user(ALICE) as client:
        foreign = await client.post("/api/v1/auth/logout", headers={"Origin": "http://evil.test"})
        client.headers.pop("Origin")
        missing = await client.post("/api/v1/auth/logout")
        still_signed_in = await client.get("/api/v1/auth/me")
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "origin_mismatch"
    assert missing.status_code == 403
    assert still_signed_in.status_code == 200


async def test_referer_from_the_site_is_accepted_when_origin_is_absent(api: Api) -> None:
    async with api.user(ALICE) as client:
        client.headers.pop("Origin")
        response = await client.post(
            "/api/v1/auth/logout", headers={"Referer": f"{PUBLIC_URL}/account"}
        )
    assert response.status_code == 200


async def test_bearer_requests_are_exempt_from_the_origin_check(api: Api) -> None:
    async with api.client() as client:
        token = await api.sign_in(client, ALICE)
    async with api.client(
        headers={"Authorization": f"Bearer {token}", "Origin": "http://evil.test"}
    ) as bearer:
        response = await bearer.post("/api/v1/auth/logout")
    assert response.status_code == 200


async def test_configured_cors_origin_may_write_with_cookies(api: Api) -> None:
    settings = make_settings(api.settings.database_url, cors_origins=["http://app.tuition.test"])
    app = create_app(
        settings,
        database=api.db,
        chain=api.chain,
        rate_limiter=MemoryRateLimiter(100),
        deployment=Deployment(),
        seed=False,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        client.headers["Origin"] = PUBLIC_URL
        await api.sign_in(client, ALICE)
        client.headers["Origin"] = "http://app.tuition.test"
        allowed = await client.post("/api/v1/auth/logout")
        preflight = await client.options(
            "/api/v1/auth/logout",
            headers={"Access-Control-Request-Method": "POST"},
        )
    assert allowed.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://app.tuition.test"


async def test_auth_endpoints_are_rate_limited_per_client(api: Api) -> None:
    app = create_app(
        api.settings,
        database=api.db,
        chain=api.chain,
        rate_limiter=MemoryRateLimiter(3),
        deployment=Deployment(),
        seed=False,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        statuses = [(await client.get("/api/v1/auth/nonce")).status_code for _ in range(4)]
        limited = await client.get("/api/v1/auth/nonce")
        other = await client.get("/api/v1/courses")  # not throttled
    assert statuses == [200, 200, 200, 429]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 200
