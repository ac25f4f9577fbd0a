"""Crypto orders through the API: quotes with the purchase transaction, refunds, history."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode
from support.api import CHAIN_ID, MARKET, Api
from support.factories import NATIVE, USDC, account, make_course, make_grant, tx_hash

from backend.chain.client import selector
from backend.orders.service import record_crypto_purchase

pytestmark = pytest.mark.anyio

PROVIDER = account("provider")
BUYER = account("buyer")
FRIEND = account("friend")
PURCHASE = "purchase(uint256,address,uint256,address,bytes32,uint32)"
PURCHASE_ARGS = ["uint256", "address", "uint256", "address", "bytes32", "uint32"]


def _decode(tx: dict[str, Any], signature: str, types: list[str]) -> tuple[Any, ...]:
    data = bytes.fromhex(tx["data"][2:])
    assert data[:4] == selector(signature)
    return tuple(decode(types, data[4:]))


async def _course(api: Api) -> int:
    course = await api.run(
        make_course,
        provider=PROVIDER.address,
        onchain_id=4,
        prices={NATIVE: 10**16, USDC: 49_000_000},
        refund_window=14 * 86400,
    )
    return course.id


async def test_native_quote_returns_a_pending_order_and_the_purchase_transaction(
    api: Api,
) -> None:
    course_id = await _course(api)
    async with api.user(BUYER) as client:
        response = await client.post(
            "/api/v1/orders/crypto", json={"courseId": course_id, "token": NATIVE}
        )
    assert response.status_code == 201, response.text
    body = response.json()
    order, tx = body["order"], body["transaction"]
    assert order["status"] == "pending" and order["rail"] == "crypto"
    assert order["amount"] == str(10**16) and order["token"]["symbol"] == "ETH"
    assert order["recipient"] == BUYER.address and order["expiresAt"]
    assert tx["to"] == MARKET and tx["chainId"] == CHAIN_ID and tx["value"] == str(10**16)
    args = _decode(tx, PURCHASE, PURCHASE_ARGS)
    assert args == (
        4,
        NATIVE,
        10**16,
        BUYER.address.lower(),
        bytes.fromhex(order["orderRef"][2:]),
        14 * 86400,  # the window the buyer is quoted binds the market
    )
    assert order["quotedRefundWindow"] == 14 * 86400
    assert body["approval"] is None


async def test_erc20_quote_for_a_friend_includes_the_approval(api: Api) -> None:
    course_id = await _course(api)
    async with api.user(BUYER) as client:
        body = (
            await client.post(
                "/api/v1/orders/crypto",
                json={"courseId": course_id, "token": USDC.lower(), "recipient": FRIEND.address},
            )
        ).json()
    assert body["transaction"]["value"] == "0"
    args = _decode(body["transaction"], PURCHASE, PURCHASE_ARGS)
    assert args[3] == FRIEND.address.lower()
    approval = body["approval"]
    assert approval["to"] == USDC
    assert _decode(approval, "approve(address,uint256)", ["address", "uint256"]) == (
        MARKET.lower(),
        49_000_000,
    )


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"token": "0x" + "12" * 20}, 409, "token_not_accepted"),
        ({"token": "nope"}, 422, "validation_error"),
        ({"token": NATIVE, "recipient": "0x12"}, 422, "validation_error"),
        ({"token": NATIVE, "courseId": 999_999}, 404, "course_not_found"),
        ({"token": NATIVE, "amount": "1"}, 422, "validation_error"),
    ],
)
async def test_bad_quote_requests_are_refused(
    api: Api, payload: dict[str, Any], status: int, code: str
) -> None:
    course_id = await _course(api)
    async with api.user(BUYER) as client:
        response = await client.post(
            "/api/v1/orders/crypto", json={"courseId": course_id} | payload
        )
        orders = (await client.get("/api/v1/me/orders")).json()
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert orders == []


async def test_quote_is_refused_when_already_entitled_or_not_on_chain(api: Api) -> None:
    course_id = await _course(api)
    offchain = (await api.run(make_course, provider=PROVIDER.address)).id
    await api.run(make_grant, address=BUYER.address, course_id=course_id)
    async with api.user(BUYER) as client:
        entitled = await client.post(
            "/api/v1/orders/crypto", json={"courseId": course_id, "token": NATIVE}
        )
        not_onchain = await client.post(
            "/api/v1/orders/crypto", json={"courseId": offchain, "token": NATIVE}
        )
    assert entitled.json()["error"]["code"] == "already_entitled"
    assert not_onchain.json()["error"]["code"] == "course_not_onchain"


async def test_quote_requires_sign_in(api: Api) -> None:
    course_id = await _course(api)
    async with api.client() as client:
        response = await client.post(
            "/api/v1/orders/crypto", json={"courseId": course_id, "token": NATIVE}
        )
    assert response.status_code == 401


async def test_paid_crypto_order_shows_in_history_and_refunds_on_chain(api: Api) -> None:
    course_id = await _course(api)
    async with api.user(BUYER) as client:
        quote = (
            await client.post(
                "/api/v1/orders/crypto", json={"courseId": course_id, "token": NATIVE}
            )
        ).json()["order"]
    await api.run(
        record_crypto_purchase,
        chain_id=CHAIN_ID,
        tx_hash=tx_hash(1),
        log_index=2,
        block_hash=tx_hash(2),
        block_number=50,
        course_onchain_id=4,
        buyer=BUYER.address,
        recipient=BUYER.address,
        token=NATIVE,
        amount=10**16,
        fee=5 * 10**14,
        order_ref=quote["orderRef"],
        confirmed=True,
    )
    async with api.user(BUYER) as client:
        [order] = (await client.get("/api/v1/me/orders")).json()
        access = (
            await client.get(
                f"/api/v1/courses/{course_id}/access", params={"address": BUYER.address}
            )
        ).json()
        not_provider = await client.post(f"/api/v1/orders/{order['id']}/refund")
    assert order["status"] == "paid" and order["txHash"] == tx_hash(1) and order["confirmed"]
    assert access["source"] == "crypto"
    assert not_provider.status_code == 403
    async with api.user(PROVIDER) as provider:
        refund = (await provider.post(f"/api/v1/orders/{order['id']}/refund")).json()
        via_provider = (
            await provider.post(
                f"/api/v1/provider/courses/{course_id}/tx/refund", json={"orderId": order["id"]}
            )
        ).json()
        missing = await provider.post(
            f"/api/v1/provider/courses/{course_id}/tx/refund", json={"orderId": "nope"}
        )
    assert refund["status"] == "sign_transaction"
    assert via_provider == refund["transaction"]
    assert _decode(
        refund["transaction"],
        "refund(uint256,address,address,address,uint256,uint256)",
        ["uint256", "address", "address", "address", "uint256", "uint256"],
    ) == (4, BUYER.address.lower(), BUYER.address.lower(), NATIVE, 10**16, 5 * 10**14)
    assert missing.status_code == 404


async def test_pending_order_cannot_be_refunded(api: Api) -> None:
    course_id = await _course(api)
    async with api.user(BUYER) as client:
        order = (
            await client.post(
                "/api/v1/orders/crypto", json={"courseId": course_id, "token": NATIVE}
            )
        ).json()["order"]
    async with api.user(PROVIDER) as provider:
        response = await provider.post(f"/api/v1/orders/{order['id']}/refund")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_refundable"


# ------------------------------------------------------------------ several chains

OTHER_CHAIN = 31338
OTHER_MARKET = "0x" + "ab" * 20


def _serve_other_chain(api: Api) -> None:
    """The API serves a second chain whose market lives at another address."""
    from backend.chain.deployment import Deployment
    from backend.core.security import checksum_address

    market = checksum_address(OTHER_MARKET)
    api.app.state.services.deployment_sources = {
        OTHER_CHAIN: lambda: Deployment(chain_id=OTHER_CHAIN, market=market)
    }


async def test_a_quote_on_another_configured_chain_uses_that_chains_id_price_and_market(
    api: Api,
) -> None:
    from backend.catalog.service import link_onchain_course, mirror_price
    from backend.core.security import checksum_address

    _serve_other_chain(api)
    course_id = await _course(api)

    def register_on_other_chain(s: Any) -> None:
        from backend.catalog.models import Course

        title = s.get(Course, course_id).title
        link_onchain_course(s, OTHER_CHAIN, PROVIDER.address, title, 9)
        mirror_price(
            s,
            chain_id=OTHER_CHAIN,
            course_onchain_id=9,
            token=NATIVE,
            price=3 * 10**18,
            accepted=True,
            block_number=1,
        )

    await api.run(register_on_other_chain)
    async with api.user(BUYER) as client:
        other = await client.post(
            "/api/v1/orders/crypto",
            json={"courseId": course_id, "token": NATIVE, "chainId": OTHER_CHAIN},
        )
        unknown = await client.post(
            "/api/v1/orders/crypto", json={"courseId": course_id, "token": NATIVE, "chainId": 1}
        )
        listed = (await client.get(f"/api/v1/courses/{course_id}?chainId={OTHER_CHAIN}")).json()
        own = (await client.get(f"/api/v1/courses/{course_id}")).json()

    assert other.status_code == 201, other.text
    order, tx = other.json()["order"], other.json()["transaction"]
    assert (tx["chainId"], tx["to"], tx["value"]) == (
        OTHER_CHAIN,
        checksum_address(OTHER_MARKET),
        str(3 * 10**18),
    )
    assert _decode(tx, PURCHASE, PURCHASE_ARGS)[0] == 9  # that chain's on-chain id
    assert order["chainId"] == OTHER_CHAIN and order["token"]["chainId"] == OTHER_CHAIN
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_chain"
    assert listed["onchainId"] == 9 and [p["price"] for p in listed["prices"]] == [str(3 * 10**18)]
    assert own["onchainId"] == 4 and {c["chainId"] for c in own["chains"]} == {
        CHAIN_ID,
        OTHER_CHAIN,
    }


async def test_a_crypto_refund_is_built_for_the_chain_the_order_was_paid_on(api: Api) -> None:
    from backend.catalog.models import Course
    from backend.catalog.service import link_onchain_course

    _serve_other_chain(api)
    course_id = await _course(api)

    def paid_on_other_chain(s: Any) -> str:
        course = s.get(Course, course_id)
        link_onchain_course(s, OTHER_CHAIN, PROVIDER.address, course.title, 9)
        order = record_crypto_purchase(
            s,
            chain_id=OTHER_CHAIN,
            tx_hash=tx_hash(),
            log_index=0,
            block_hash=tx_hash(),
            block_number=5,
            course_onchain_id=9,
            buyer=BUYER.address,
            recipient=BUYER.address,
            token=NATIVE,
            amount=10**16,
            fee=10**14,
            order_ref="0x" + "00" * 32,
            confirmed=True,
        )
        return str(order.id)

    order_id = await api.run(paid_on_other_chain)
    async with api.user(PROVIDER) as client:
        response = await client.post(f"/api/v1/orders/{order_id}/refund")
    assert response.status_code == 200, response.text
    tx = response.json()["transaction"]
    assert tx["chainId"] == OTHER_CHAIN and tx["to"].lower() == OTHER_MARKET
