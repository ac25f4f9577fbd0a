"""Provider endpoints: course management, transactions to sign, sales, balances."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode
from sqlalchemy import select
from support.api import CERTIFICATE, CHAIN_ID, MARKET, Api
from support.factories import (
    NATIVE,
    USDC,
    account,
    make_course,
    make_payout,
    make_provider_profile,
    seed_test_tokens,
)

from backend.audit.models import AuditEntry
from backend.catalog.models import Token
from backend.chain.client import selector
from backend.core.db import utcnow
from backend.orders.models import Order, OrderStatus, Rail
from backend.payouts.models import PayoutKind
from backend.provider.profiles import profile_hash

pytestmark = pytest.mark.anyio

PROVIDER = account("provider")
OTHER = account("other-provider")
LEARNER = account("learner")


def _args(tx: dict, signature: str, types: list[str]) -> tuple:  # type: ignore[type-arg]
    data = bytes.fromhex(tx["data"][2:])
    assert data[:4] == selector(signature)
    return decode(types, data[4:])


async def test_provider_creates_and_publishes_a_course_with_lessons_and_card_price(
    api: Api,
) -> None:
    async with api.user(PROVIDER) as client:
        created = await client.post(
            "/api/v1/provider/courses",
            json={"title": "  Zero-Knowledge  ", "description": "ZK", "refundWindow": 3600},
        )
        course_id = created.json()["id"]
        base = f"/api/v1/provider/courses/{course_id}"
        lesson = await client.put(f"{base}/lessons/1", json={"title": "Intro", "body": "Hi"})
        replaced = await client.put(f"{base}/lessons/1", json={"title": "Intro!", "body": "Hi"})
        gap = await client.put(f"{base}/lessons/3", json={"title": "Later"})
        price = await client.put(f"{base}/fiat-price", json={"amount": "4900", "currency": "EUR"})
        published = await client.patch(base, json={"status": "published"})
        mine = await client.get("/api/v1/provider/courses")
    assert created.status_code == 201
    assert created.json()["title"] == "Zero-Knowledge"
    assert created.json()["status"] == "draft" and created.json()["provider"] == PROVIDER.address
    assert lesson.status_code == 200 and replaced.json()["title"] == "Intro!"
    assert gap.status_code == 422 and gap.json()["error"]["code"] == "lesson_position"
    assert price.json()["fiatPrice"] == {"amount": "4900", "currency": "eur"}
    assert published.json()["status"] == "published"
    assert published.json()["lessons"] == [{"position": 1, "title": "Intro!"}]
    assert [c["id"] for c in mine.json()] == [course_id]
    actions = await api.query(
        lambda s: s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    )
    assert actions == ["course.create", "course.fiat_price", "course.update"]


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "é" * 51},  # 102 bytes of UTF-8
        # What the market refuses (InvalidTitle): certificates must always render.
        {"title": "Tab\tin title"},
        {"title": "Bell \x07"},
        {"title": "C1 \u0085 control"},
        {"title": "Not XML \ufffe"},
        {"title": "ok", "refundWindow": -1},
        {"title": "ok", "refundWindow": 31 * 24 * 3600},
        {"title": "ok", "unknownField": 1},
    ],
)
async def test_invalid_course_input_is_refused(api: Api, body: dict[str, object]) -> None:
    async with api.user(PROVIDER) as client:
        response = await client.post("/api/v1/provider/courses", json=body)
        listed = await client.get("/api/v1/provider/courses")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert listed.json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 49.0, "currency": "usd"},
        {"amount": "49.00", "currency": "usd"},
        {"amount": "-1", "currency": "usd"},
        {"amount": True, "currency": "usd"},
        {"amount": "100000000", "currency": "usd"},
        {"amount": "4900", "currency": "dollars"},
        {"amount": "4900"},
    ],
)
async def test_fiat_price_must_be_integer_minor_units(api: Api, body: dict[str, object]) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    async with api.user(PROVIDER) as client:
        response = await client.put(f"/api/v1/provider/courses/{course.id}/fiat-price", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_only_the_provider_may_manage_a_course(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    base = f"/api/v1/provider/courses/{course.id}"
    async with api.user(OTHER) as client:
        responses = [
            await client.patch(base, json={"title": "mine now"}),
            await client.put(f"{base}/fiat-price", json={"amount": "1", "currency": "usd"}),
            await client.put(f"{base}/lessons/1", json={"title": "x"}),
            await client.post(f"{base}/tx/create-course"),
        ]
    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert {r.json()["error"]["code"] for r in responses} == {"not_course_provider"}


async def test_create_course_and_set_price_transactions_encode_the_interface_calls(
    api: Api,
) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, title="Solidity")
    base = f"/api/v1/provider/courses/{course.id}"
    api.chain.courses[42] = PROVIDER.address
    async with api.user(PROVIDER) as client:
        create = (await client.post(f"{base}/tx/create-course")).json()
        early_price = await client.post(
            f"{base}/tx/set-price", json={"token": USDC, "price": "1000"}
        )
        linked = await client.put(f"{base}/onchain-id", json={"onchainId": 42})
        again = await client.post(f"{base}/tx/create-course")
        price = (
            await client.post(f"{base}/tx/set-price", json={"token": USDC, "price": "49000000"})
        ).json()
        unknown_token = await client.post(
            f"{base}/tx/set-price", json={"token": "0x" + "11" * 20, "price": "1"}
        )
        too_big = await client.post(
            f"{base}/tx/set-price", json={"token": NATIVE, "price": str(2**96)}
        )
        withdraw = (
            await client.post("/api/v1/provider/tx/withdraw", json={"token": NATIVE})
        ).json()
    assert create["to"] == MARKET and create["value"] == "0" and create["chainId"] == CHAIN_ID
    assert _args(create, "createCourse(string,uint32)", ["string", "uint32"]) == (
        "Solidity",
        14 * 24 * 3600,
    )
    assert early_price.status_code == 409
    assert early_price.json()["error"]["code"] == "course_not_onchain"
    assert linked.json()["onchainId"] == 42
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_linked"
    assert _args(price, "setPrice(uint256,address,uint256)", ["uint256", "address", "uint256"]) == (
        42,
        USDC.lower(),
        49_000_000,
    )
    assert unknown_token.status_code == 422
    assert too_big.status_code == 422
    assert _args(withdraw, "withdraw(address)", ["address"]) == (NATIVE,)


async def test_onchain_id_cannot_be_linked_twice(api: Api) -> None:
    first = await api.run(make_course, provider=PROVIDER.address, onchain_id=9)
    second = await api.run(make_course, provider=PROVIDER.address)
    api.chain.courses.update({9: PROVIDER.address, 10: PROVIDER.address})
    async with api.user(PROVIDER) as client:
        taken = await client.put(
            f"/api/v1/provider/courses/{second.id}/onchain-id", json={"onchainId": 9}
        )
        relink = await client.put(
            f"/api/v1/provider/courses/{first.id}/onchain-id", json={"onchainId": 10}
        )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "onchain_id_taken"
    assert relink.status_code == 409 and relink.json()["error"]["code"] == "already_linked"


async def test_onchain_links_come_from_the_chain(api: Api) -> None:
    """Squatting: a provider cannot link another provider's on-chain course, nor one that does
    not exist yet (every future course of every provider)."""
    mine = await api.run(make_course, provider=PROVIDER.address)
    api.chain.courses.update({1: OTHER.address, 2: PROVIDER.address})
    path = f"/api/v1/provider/courses/{mine.id}/onchain-id"
    async with api.user(PROVIDER) as client:
        theirs = await client.put(path, json={"onchainId": 1})
        future = await client.put(path, json={"onchainId": 3})
        api.chain.down = True
        unreachable = await client.put(path, json={"onchainId": 2})
        api.chain.down = False
        unchanged = (await client.get(f"/api/v1/courses/{mine.id}")).json()
        linked = await client.put(path, json={"onchainId": 2})
    assert theirs.status_code == 403 and theirs.json()["error"]["code"] == "not_onchain_provider"
    assert future.status_code == 404
    assert future.json()["error"]["code"] == "onchain_course_not_found"
    assert unreachable.status_code == 502 and unreachable.json()["error"]["code"] == "chain_error"
    assert unchanged["onchainId"] is None
    assert linked.status_code == 200 and linked.json()["onchainId"] == 2


@pytest.mark.parametrize("onchain_id", [0, 2**63, 2**96 - 1, 2**96, -1, 1.5, "1e3"])
async def test_out_of_range_onchain_ids_are_422_naming_the_field(api: Api, onchain_id: Any) -> None:
    mine = await api.run(make_course, provider=PROVIDER.address)
    async with api.user(PROVIDER) as client:
        response = await client.put(
            f"/api/v1/provider/courses/{mine.id}/onchain-id", json={"onchainId": onchain_id}
        )
    assert response.status_code == 422
    assert "onchainId" in response.text


async def test_title_of_an_onchain_course_is_locked(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, onchain_id=3)
    async with api.user(PROVIDER) as client:
        response = await client.patch(
            f"/api/v1/provider/courses/{course.id}", json={"title": "Renamed"}
        )
    assert response.status_code == 409 and response.json()["error"]["code"] == "title_locked"


def _order(course_id: int, *, id: str, **fields: object) -> Order:
    values: dict[str, object] = {
        "id": f"order-{id}",
        "course_id": course_id,
        "buyer": LEARNER.address,
        "recipient": LEARNER.address,
        "fee": 0,
        "order_ref": "0x" + id.encode().hex().ljust(64, "0"),
        "anomalies": [],
    }
    values.update(fields)
    if values.get("rail") == "crypto":
        values.setdefault("chain_id", CHAIN_ID)  # every crypto order is some chain's
    return Order(**values)  # type: ignore[arg-type]


async def test_sales_span_both_rails_with_exact_totals(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, onchain_id=1)
    second = await api.run(make_course, provider=PROVIDER.address, title="Second")
    other = await api.run(make_course, provider=OTHER.address)
    big = 10**30  # beyond 2**63: SQLite stores it as a padded string, totals stay exact

    def seed(s):  # type: ignore[no-untyped-def]

        s.add_all(
            [
                _order(
                    course.id,
                    id="c1",
                    rail=Rail.CRYPTO,
                    token=NATIVE,
                    amount=big,
                    fee=5,
                    status=OrderStatus.PAID,
                    confirmed=True,
                    paid_at=utcnow(),
                ),
                _order(
                    course.id,
                    id="c2",
                    rail=Rail.CRYPTO,
                    token=NATIVE,
                    amount=big,
                    fee=5,
                    status=OrderStatus.PAID,
                    confirmed=False,
                    paid_at=utcnow(),
                ),
                _order(
                    course.id,
                    id="c3",
                    rail=Rail.CRYPTO,
                    token=USDC,
                    amount=7,
                    fee=1,
                    status=OrderStatus.REFUNDED,
                    confirmed=True,
                    paid_at=utcnow(),
                ),
                _order(
                    course.id,
                    id="k1",
                    rail=Rail.CARD,
                    currency="usd",
                    amount=4900,
                    status=OrderStatus.PAID,
                    paid_at=utcnow(),
                ),
                _order(
                    course.id,
                    id="k2",
                    rail=Rail.CARD,
                    currency="usd",
                    amount=4900,
                    status=OrderStatus.PENDING,
                ),
                _order(
                    second.id,
                    id="k3",
                    rail=Rail.CARD,
                    currency="usd",
                    amount=1000,
                    fee=50,  # a destination charge: the platform's application fee
                    status=OrderStatus.PAID,
                    paid_at=utcnow(),
                ),
                _order(
                    other.id,
                    id="o1",
                    rail=Rail.CARD,
                    currency="usd",
                    amount=1,
                    status=OrderStatus.PAID,
                    paid_at=utcnow(),
                ),
            ]
        )
        s.flush()

    await api.run(seed)
    async with api.user(PROVIDER) as client:
        everything = (await client.get("/api/v1/provider/sales")).json()
        confirmed = (
            await client.get("/api/v1/provider/sales", params={"confirmedOnly": "true"})
        ).json()
    assert {o["id"] for o in everything["orders"]} == {
        "order-c1",
        "order-c2",
        "order-c3",
        "order-k1",
        "order-k3",
    }
    totals = {
        (t["rail"], (t["token"] or {}).get("symbol") or t["currency"]): t
        for t in everything["totals"]
    }
    assert totals[("crypto", "ETH")] == {
        "rail": "crypto",
        "chainId": CHAIN_ID,
        "token": totals[("crypto", "ETH")]["token"],
        "currency": None,
        "courseId": None,
        "orders": 2,
        "gross": str(2 * big),
        "refunded": "0",
        "net": str(2 * big),
        "fees": "10",
    }
    assert totals[("crypto", "USDC")]["refunded"] == "7"
    assert totals[("crypto", "USDC")]["net"] == "0"
    assert (totals[("card", "usd")]["gross"], totals[("card", "usd")]["fees"]) == ("5900", "50")
    by_course = {
        (t["courseId"], t["rail"], (t["token"] or {}).get("symbol") or t["currency"]): (
            t["orders"],
            t["gross"],
            t["fees"],
        )
        for t in everything["byCourse"]
    }
    assert by_course == {
        (course.id, "crypto", "ETH"): (2, str(2 * big), "10"),
        (course.id, "crypto", "USDC"): (1, "7", "1"),
        (course.id, "card", "usd"): (1, "4900", "0"),
        (second.id, "card", "usd"): (1, "1000", "50"),
    }
    confirmed_totals = {
        (t["rail"], t["currency"] or t["token"]["symbol"]): t["orders"] for t in confirmed["totals"]
    }
    assert confirmed_totals[("crypto", "ETH")] == 1


async def test_balances_come_from_the_market_contract(api: Api) -> None:
    api.chain.withdrawable[(PROVIDER.address.lower(), USDC.lower())] = 123
    api.chain.escrow[(PROVIDER.address.lower(), NATIVE)] = (10**18, 5 * 10**16)
    async with api.user(PROVIDER) as client:
        response = await client.get("/api/v1/provider/balances")
        api.chain.down = True
        outage = await client.get("/api/v1/provider/balances")
    body = response.json()
    assert body["market"] == MARKET
    balances = {b["token"]["symbol"]: b for b in body["balances"]}
    assert balances["USDC"]["withdrawable"] == "123"
    assert balances["ETH"]["escrowNet"] == str(10**18)
    assert balances["ETH"]["escrowFee"] == str(5 * 10**16)
    assert outage.status_code == 502 and outage.json()["error"]["code"] == "chain_error"


async def test_chain_endpoints_say_when_no_contract_is_deployed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend.chain.deployment import Deployment

    monkeypatch.setattr(api.app.state.services, "deployment_source", Deployment)
    async with api.user(PROVIDER) as client:
        response = await client.post("/api/v1/provider/tx/withdraw", json={"token": NATIVE})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "chain_not_configured"


async def test_payouts_list_my_ledger_newest_first_in_pages(api: Api) -> None:
    big = 10**30  # beyond 2**63: exact as a string
    await api.run(seed_test_tokens)
    released = await api.run(
        make_payout,
        account=PROVIDER.address,
        kind=PayoutKind.RELEASED,
        token=USDC,
        amount=990,
        fee=10,
    )
    withdrawn = await api.run(make_payout, account=PROVIDER.address, amount=big)
    await api.run(make_payout, account=OTHER.address, amount=5)
    async with api.user(PROVIDER) as client:
        first = await client.get("/api/v1/provider/payouts", params={"limit": 1})
        second = await client.get(
            "/api/v1/provider/payouts",
            params={"limit": 1, "before": first.json()["nextBefore"]},
        )
    assert first.status_code == 200
    [newest] = first.json()["payouts"]
    assert newest["id"] == withdrawn.id and newest["kind"] == "withdrawn"
    assert newest["amount"] == str(big) and newest["fee"] == "0"
    assert newest["token"]["symbol"] == "ETH"
    assert first.json()["nextBefore"] == withdrawn.id
    [older] = second.json()["payouts"]
    assert older["id"] == released.id and older["kind"] == "released"
    assert (older["amount"], older["fee"], older["token"]["symbol"]) == ("990", "10", "USDC")
    assert second.json()["nextBefore"] == released.id  # a full page: there may be more


async def test_payouts_need_a_signed_in_provider(api: Api) -> None:
    async with api.client() as client:
        reply = await client.get("/api/v1/provider/payouts")
    assert reply.status_code == 401
    assert reply.json()["error"]["code"]


async def test_prices_in_a_token_the_market_disallows_are_not_offered(api: Api) -> None:
    await api.run(seed_test_tokens)
    course = await api.run(
        make_course, provider=PROVIDER.address, onchain_id=9, prices={NATIVE: 10, USDC: 20}
    )

    def disallow(s):  # type: ignore[no-untyped-def]
        s.get(Token, (CHAIN_ID, USDC)).allowed = False

    await api.run(disallow)
    async with api.user(LEARNER) as client:
        listed = await client.get(f"/api/v1/courses/{course.id}")
        quote = await client.post(
            "/api/v1/orders/crypto", json={"courseId": course.id, "token": USDC}
        )
    assert [p["token"]["symbol"] for p in listed.json()["prices"]] == ["ETH"]
    assert quote.status_code == 409
    assert quote.json()["error"]["code"] == "token_not_accepted"


async def test_titles_in_every_script_are_accepted_and_a_bad_rename_is_refused(api: Api) -> None:
    title = "Ünïcödé Ελληνικά 中文 العربية 🎓 — R&D <x>"
    async with api.user(PROVIDER) as client:
        created = await client.post("/api/v1/provider/courses", json={"title": title})
        assert created.status_code == 201, created.text
        course_id = created.json()["id"]
        renamed = await client.patch(
            f"/api/v1/provider/courses/{course_id}", json={"title": "Line\nbreak"}
        )
        mine = await client.get("/api/v1/provider/courses")
        # A JSON string may carry a lone surrogate, which is not UTF-8 at all.
        surrogate = await client.post(
            "/api/v1/provider/courses",
            content=b'{"title": "Lone \\ud800 surrogate"}',
            headers={"Content-Type": "application/json"},
        )
    assert renamed.status_code == 422
    assert "at byte 4" in renamed.json()["error"]["message"]
    assert [c["title"] for c in mine.json()] == [title]
    assert surrogate.status_code == 422
    assert surrogate.json()["error"]["code"] == "validation_error"


async def test_profile_transaction_encodes_set_provider_profile_for_the_certificate(
    api: Api,
) -> None:
    async with api.user(PROVIDER) as client:
        reply = await client.post(
            "/api/v1/provider/profile/tx",
            json={"name": " Solidity School ", "domain": "Learn.Solidity.School"},
        )
    assert reply.status_code == 200, reply.text
    tx = reply.json()
    assert tx["to"] == CERTIFICATE and tx["value"] == "0" and tx["chainId"] == CHAIN_ID
    assert _args(tx, "setProviderProfile(string,string)", ["string", "string"]) == (
        "Solidity School",
        "learn.solidity.school",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "domain": "school.example"},
        {"name": "x" * 65, "domain": "school.example"},
        {"name": "é" * 33, "domain": "school.example"},  # 66 bytes of UTF-8
        {"name": "Tab\tSchool", "domain": "school.example"},
        {"name": "School", "domain": "localhost"},
        {"name": "School", "domain": "-school.example"},
        {"name": "School", "domain": "school..example"},
        {"name": "School", "domain": "schööl.example"},
        {"name": "School", "domain": "https://school.example"},
    ],
)
async def test_profiles_the_contract_would_refuse_are_422(api: Api, body: dict[str, str]) -> None:
    async with api.user(PROVIDER) as client:
        reply = await client.post("/api/v1/provider/profile/tx", json=body)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "validation_error"


async def test_profile_transaction_needs_a_signed_in_wallet(api: Api) -> None:
    async with api.client() as client:
        reply = await client.post(
            "/api/v1/provider/profile/tx", json={"name": "School", "domain": "school.example"}
        )
    assert reply.status_code == 401


async def test_public_profile_is_the_mirrored_record(api: Api) -> None:
    reviewed = profile_hash("Solidity School", "solidity.school")

    await api.run(
        make_provider_profile,
        PROVIDER.address,
        "Solidity School",
        "solidity.school",
        verified_by=MARKET,
    )
    async with api.client() as client:
        found = await client.get(f"/api/v1/providers/{PROVIDER.address.lower()}")
        missing = await client.get(f"/api/v1/providers/{'0x' + '12' * 20}")
        invalid = await client.get("/api/v1/providers/not-an-address")
    assert found.status_code == 200
    body = found.json()
    assert (body["address"], body["name"], body["domain"], body["verified"]) == (
        PROVIDER.address,
        "Solidity School",
        "solidity.school",
        True,
    )
    assert body["profileHash"] == reviewed and body["verifiedBy"] == MARKET
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "no_provider_profile"
    assert invalid.status_code == 422


# ------------------------------------------------------------------ several chains

OTHER_CHAIN = 31338


async def test_every_provider_transaction_and_balance_can_target_another_configured_chain(
    api: Api,
) -> None:
    from support.api import FakeChain

    from backend.chain.deployment import Deployment
    from backend.core.security import checksum_address

    other_market = checksum_address("0x" + "ab" * 20)
    other_certificate = checksum_address("0x" + "cd" * 20)
    other = FakeChain()
    other.withdrawable[(PROVIDER.address.lower(), NATIVE)] = 77
    services = api.app.state.services
    services.deployment_sources = {
        OTHER_CHAIN: lambda: Deployment(
            chain_id=OTHER_CHAIN, market=other_market, certificate=other_certificate
        )
    }
    services.chains = {OTHER_CHAIN: other}
    await api.run(seed_test_tokens, OTHER_CHAIN)
    course = await api.run(make_course, provider=PROVIDER.address, onchain_id=3)  # on CHAIN_ID
    on_b = f"?chainId={OTHER_CHAIN}"
    base = f"/api/v1/provider/courses/{course.id}"
    async with api.user(PROVIDER) as client:
        create = (await client.post(f"{base}/tx/create-course{on_b}")).json()
        again_here = await client.post(f"{base}/tx/create-course")
        unpriced = await client.post(
            f"{base}/tx/set-price{on_b}", json={"token": NATIVE, "price": "5"}
        )
        withdraw = (
            await client.post(f"/api/v1/provider/tx/withdraw{on_b}", json={"token": NATIVE})
        ).json()
        profile = (
            await client.post(
                f"/api/v1/provider/profile/tx{on_b}",
                json={"name": "School", "domain": "school.example"},
            )
        ).json()
        balances = (await client.get(f"/api/v1/provider/balances{on_b}")).json()
        unknown = await client.get("/api/v1/provider/balances?chainId=5")

    assert (create["chainId"], create["to"]) == (OTHER_CHAIN, other_market)
    assert again_here.json()["error"]["code"] == "already_linked"  # registered on CHAIN_ID
    # Not registered on the other chain yet: its price cannot be set there.
    assert unpriced.json()["error"]["code"] == "course_not_onchain"
    assert (withdraw["chainId"], withdraw["to"]) == (OTHER_CHAIN, other_market)
    assert (profile["chainId"], profile["to"]) == (OTHER_CHAIN, other_certificate)
    assert balances["market"] == other_market
    eth = next(b for b in balances["balances"] if b["token"]["address"] == NATIVE)
    assert eth["withdrawable"] == "77" and eth["token"]["chainId"] == OTHER_CHAIN
    assert api.chain.calls == [], "the API's own chain was not asked"
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_chain"


async def test_my_courses_show_each_chains_registration_and_prices(api: Api) -> None:
    from backend.catalog.models import CourseChain, TokenPrice

    def on_both(s: Any) -> int:
        seed_test_tokens(s, OTHER_CHAIN)
        course = make_course(s, provider=PROVIDER.address, onchain_id=4, prices={NATIVE: 10})
        s.add(CourseChain(course_id=course.id, chain_id=OTHER_CHAIN, onchain_id=9))
        s.add(
            TokenPrice(
                course_id=course.id, chain_id=OTHER_CHAIN, token=USDC, price=7, accepted=True
            )
        )
        s.flush()
        return int(course.id)

    from backend.chain.deployment import Deployment

    api.app.state.services.deployment_sources = {
        OTHER_CHAIN: lambda: Deployment(chain_id=OTHER_CHAIN, market=MARKET)
    }
    await api.run(seed_test_tokens)
    course_id = await api.run(on_both)
    async with api.user(PROVIDER) as client:
        here = (await client.get("/api/v1/provider/courses")).json()
        there = (await client.get(f"/api/v1/provider/courses?chainId={OTHER_CHAIN}")).json()
        unknown = await client.get("/api/v1/provider/courses?chainId=5")

    (a,) = [c for c in here if c["id"] == course_id]
    (b,) = [c for c in there if c["id"] == course_id]
    assert a["onchainId"] == 4 and b["onchainId"] == 9
    assert [(p["token"]["address"], p["price"]) for p in a["prices"]] == [(NATIVE, "10")]
    assert [(p["token"]["chainId"], p["token"]["address"], p["price"]) for p in b["prices"]] == [
        (OTHER_CHAIN, USDC, "7")
    ]
    assert a["chains"] == b["chains"]
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_chain"
