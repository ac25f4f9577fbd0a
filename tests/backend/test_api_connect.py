"""Card payouts through Stripe Connect: onboarding, destination charges with the market's fee,
refunds that reverse the provider's transfer (against the Stripe stand-in, real SDK)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from support.api import Api
from support.factories import account, make_course

from backend.audit.models import AuditEntry
from backend.core.config import Settings
from backend.orders.models import Order
from backend.outbox.models import OutboxMessage
from backend.payouts.connect import reverse_for_lost_dispute
from backend.payouts.fees import split
from backend.payouts.models import ConnectAccount

pytestmark = pytest.mark.anyio

LEARNER = account("connect-learner")


@pytest.fixture
def provider(request: pytest.FixtureRequest) -> Any:
    """A provider of this test only: the Stripe stand-in outlives each test's database, and
    replays an account creation for the same provider (Stripe's idempotency key)."""
    return account(f"connect-provider-{request.node.name}")


async def _onboard(api: Api, client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/api/v1/provider/connect/onboarding")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _ready_provider(api: Api, provider: Any) -> str:
    """`provider` onboarded completely (account.updated delivered); returns its account id."""
    async with api.user(provider) as client:
        onboarding = await _onboard(api, client)
    account_id = onboarding["account"]["stripeAccountId"]
    event = api.stripe_fake.complete_onboarding(account_id)
    response = await api.deliver(event)
    assert response.status_code == 200, response.text
    return str(account_id)


async def _card_course(api: Api, provider: Any, price: int = 4900) -> int:
    course = await api.run(make_course, provider=provider.address, fiat_price=price, currency="usd")
    return int(course.id)


async def _checkout(client: httpx.AsyncClient, course_id: int) -> dict[str, Any]:
    response = await client.post("/api/v1/checkout/stripe", json={"courseId": course_id})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_onboarding_creates_one_express_account_and_a_link_back_to_the_dashboard(
    api: Api, provider: Any
) -> None:
    async with api.user(provider) as client:
        before = (await client.get("/api/v1/provider/connect")).json()
        first = await _onboard(api, client)
        again = await _onboard(api, client)  # a second click: same account, a fresh link
        state = (await client.get("/api/v1/provider/connect")).json()
    assert before == {
        "status": "none",
        "stripeAccountId": None,
        "detailsSubmitted": False,
        "chargesEnabled": False,
        "payoutsEnabled": False,
        "requirementsDue": [],
    }
    account_id = first["account"]["stripeAccountId"]
    assert account_id.startswith("acct_")
    assert again["account"]["stripeAccountId"] == account_id
    assert first["url"] != again["url"]  # account links are single-use
    assert first["url"].startswith(api.stripe_fake.public_url + "/connect/onboard/")
    assert state["status"] == "onboarding" and state["chargesEnabled"] is False
    assert "external_account" in state["requirementsDue"]
    stripe_account = api.stripe_fake.get_object(account_id)
    assert stripe_account["type"] == "express"
    assert stripe_account["metadata"] == {"provider": provider.address}
    assert set(stripe_account["capabilities"]) == {"card_payments", "transfers"}
    rows = await api.query(lambda s: s.scalar(select(func.count()).select_from(ConnectAccount)))
    assert rows == 1
    created = await api.query(
        lambda s: s.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "connect.account_created")
        ).all()
    )
    assert created == [f"user:{provider.address}"]


async def test_account_updated_makes_the_account_ready_and_is_audited_once(
    api: Api, provider: Any
) -> None:
    account_id = await _ready_provider(api, provider)
    event = api.stripe_fake.events("account.updated")[-1]
    assert event["account"] == account_id  # a Connect event names its account
    again = await api.deliver(event)  # Stripe retries: nothing changes twice
    assert again.status_code == 200
    async with api.user(provider) as client:
        state = (await client.get("/api/v1/provider/connect")).json()
    assert state["status"] == "ready"
    assert state["chargesEnabled"] and state["payoutsEnabled"] and state["detailsSubmitted"]
    assert state["requirementsDue"] == []
    updates = await api.query(
        lambda s: s.scalars(
            select(AuditEntry).where(AuditEntry.action == "connect.account_updated")
        ).all()
    )
    assert len(updates) == 1 and updates[0].after["chargesEnabled"] is True


async def test_another_provider_onboards_its_own_account_and_never_sees_anothers(
    api: Api, provider: Any
) -> None:
    account_id = await _ready_provider(api, provider)
    async with api.user(account(f"other-{provider.address}")) as client:
        mine = (await client.get("/api/v1/provider/connect")).json()
        onboarding = await _onboard(api, client)
    assert mine["status"] == "none"
    assert onboarding["account"]["stripeAccountId"] not in (None, account_id)


async def test_account_updated_for_an_account_this_platform_did_not_create_is_ignored(
    api: Api, provider: Any
) -> None:
    foreign = api.stripe_fake.handle_api(
        "POST",
        "/v1/accounts",
        {"Authorization": f"Bearer {api.settings.stripe_secret_key.get_secret_value()}"},
        body=b"type=express",
    )[1]
    event = api.stripe_fake.complete_onboarding(foreign["id"])
    response = await api.deliver(event)
    assert response.status_code == 200
    stored = await api.query(
        lambda s: s.scalars(select(AuditEntry).where(AuditEntry.action.like("connect.%"))).all()
    )
    assert stored == []


async def test_card_sale_of_an_onboarded_provider_is_a_destination_charge_with_the_market_fee(
    api: Api, provider: Any
) -> None:
    account_id = await _ready_provider(api, provider)
    api.chain.fee_bps = 750  # the contract's fee, read when the checkout starts
    course_id = await _card_course(api, provider, price=4999)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(client, course_id)
    expected = split(4999, 750)
    assert (expected.fee, expected.net) == (374, 4625)  # 374.925 rounds down, like the contract
    order = await api.query(lambda s: s.get_one(Order, checkout["orderId"]))
    assert (order.amount, order.fee, order.stripe_destination) == (4999, 374, account_id)

    completed = api.stripe_fake.complete_session(checkout["sessionId"])
    assert (await api.deliver(completed)).status_code == 200
    intent = api.stripe_fake.get_object(completed["data"]["object"]["payment_intent"])
    charge = api.stripe_fake.get_object(intent["latest_charge"])
    assert charge["transfer_data"] == {"destination": account_id}
    assert charge["application_fee_amount"] == 374
    assert charge["transfer"].startswith("tr_")


async def test_a_provider_without_a_ready_account_sells_through_the_platform_if_allowed(
    api: Api, provider: Any
) -> None:
    course_id = await _card_course(api, provider)
    async with api.user(provider) as client:
        await _onboard(api, client)  # started, not finished
    async with api.user(LEARNER) as client:
        checkout = await _checkout(client, course_id)
    order = await api.query(lambda s: s.get_one(Order, checkout["orderId"]))
    assert (order.fee, order.stripe_destination) == (0, None)
    assert api.chain.calls == []  # no fee to read: the platform collects the whole amount


async def test_the_platform_can_refuse_card_sales_until_the_provider_is_onboarded(
    api: Api, provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings.model_fields["card_requires_connect"].default is True  # the default
    monkeypatch.setattr(api.settings, "card_requires_connect", True)
    course_id = await _card_course(api, provider)

    async def card_prices() -> tuple[Any, Any, Any]:
        async with api.user(LEARNER) as client:
            detail = (await client.get(f"/api/v1/courses/{course_id}")).json()
            listed = (await client.get("/api/v1/courses", params={"limit": 100})).json()
        async with api.user(provider) as client:
            own = (await client.get("/api/v1/provider/courses")).json()
        [in_list] = [c for c in listed["items"] if c["id"] == course_id]
        [mine] = [c for c in own if c["id"] == course_id]
        return detail["fiatPrice"], in_list["fiatPrice"], mine["fiatPrice"]

    # Not offered to buyers (the provider still sees the price it set), and refused if asked.
    assert await card_prices() == (None, None, {"amount": "4900", "currency": "usd"})
    async with api.user(LEARNER) as client:
        refused = await client.post("/api/v1/checkout/stripe", json={"courseId": course_id})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "provider_not_onboarded"
    assert await api.query(lambda s: s.scalar(select(func.count()).select_from(Order))) == 0

    await _ready_provider(api, provider)
    offered = {"amount": "4900", "currency": "usd"}
    assert await card_prices() == (offered, offered, offered)
    async with api.user(LEARNER) as client:
        await _checkout(client, course_id)


async def test_refund_of_a_destination_charge_reverses_the_transfer_and_the_fee(
    api: Api, provider: Any
) -> None:
    await _ready_provider(api, provider)
    course_id = await _card_course(api, provider)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(client, course_id)
    completed = api.stripe_fake.complete_session(checkout["sessionId"])
    assert (await api.deliver(completed)).status_code == 200
    async with api.user(provider) as client:
        refund = await client.post(f"/api/v1/orders/{checkout['orderId']}/refund")
    assert refund.status_code == 200, refund.text
    stripe_refund = api.stripe_fake.get_object(refund.json()["refundId"])
    assert stripe_refund["transfer_reversal"].startswith("trr_")  # the provider gives back its net
    assert api.stripe_fake.fee_refunded(stripe_refund["id"])  # and the platform its fee


async def test_card_balance_follows_a_sale_through_settlement_payout_and_refund(
    api: Api, provider: Any
) -> None:
    account_id = await _ready_provider(api, provider)
    api.chain.fee_bps = 500
    course_id = await _card_course(api, provider, price=4900)  # fee 245, net 4655
    async with api.user(LEARNER) as client:
        checkout = await _checkout(client, course_id)
    assert (await api.deliver(api.stripe_fake.complete_session(checkout["sessionId"]))).is_success

    async def balance() -> dict[str, Any]:
        async with api.user(provider) as client:
            response = await client.get("/api/v1/provider/card-balance")
        assert response.status_code == 200, response.text
        return dict(response.json())

    sold = await balance()
    assert sold["status"] == "ready"
    assert sold["pending"] == [{"amount": "4655", "currency": "usd"}]
    assert sold["available"] == [] and sold["payouts"] == []

    api.stripe_fake.settle_balance(account_id)
    settled = await balance()
    assert settled["pending"] == []
    assert settled["available"] == [{"amount": "4655", "currency": "usd"}]

    [paid] = api.stripe_fake.pay_out(account_id)["data"]
    assert paid["type"] == "payout.paid" and paid["account"] == account_id
    after_payout = await balance()
    assert after_payout["available"] == [{"amount": "0", "currency": "usd"}]
    [payout] = after_payout["payouts"]
    assert (payout["amount"], payout["currency"], payout["status"]) == ("4655", "usd", "paid")

    # A refund after the payout takes the provider's share back: its balance goes negative.
    async with api.user(provider) as client:
        refund = await client.post(f"/api/v1/orders/{checkout['orderId']}/refund")
    assert refund.status_code == 200, refund.text
    refunded = await balance()
    assert refunded["available"] == [{"amount": "-4655", "currency": "usd"}]


async def test_card_balance_is_empty_and_asks_stripe_nothing_before_onboarding(
    api: Api, provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_call(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Stripe was asked for the balance of an account that is not ready")

    monkeypatch.setattr(api.app.state.services.stripe, "connected_balance", no_call)
    async with api.user(provider) as client:
        before = (await client.get("/api/v1/provider/card-balance")).json()
        await _onboard(api, client)
        during = (await client.get("/api/v1/provider/card-balance")).json()
    empty = {"pending": [], "available": [], "payouts": []}
    assert before == {"status": "none", **empty}
    assert during == {"status": "onboarding", **empty}


async def test_a_lost_dispute_takes_the_providers_share_back_once(api: Api, provider: Any) -> None:
    account_id = await _ready_provider(api, provider)
    api.chain.fee_bps = 500
    course_id = await _card_course(api, provider, price=4900)  # fee 245, net 4655
    async with api.user(LEARNER) as client:
        checkout = await _checkout(client, course_id)
    completed = api.stripe_fake.complete_session(checkout["sessionId"])
    assert (await api.deliver(completed)).is_success
    intent = api.stripe_fake.get_object(completed["data"]["object"]["payment_intent"])
    charge = api.stripe_fake.get_object(intent["latest_charge"])
    opened = api.stripe_fake.open_dispute(charge["id"])
    assert (await api.deliver(opened)).is_success
    dispute_id = opened["data"]["object"]["id"]

    async def reverse() -> str:
        gateway = api.app.state.services.stripe

        def run(s: Any) -> str:
            factory = sessionmaker(
                bind=s.connection(),
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
            )
            return reverse_for_lost_dispute(factory, gateway, checkout["orderId"])

        return str(await api.run(run))

    assert await reverse() == "noop"  # disputed, not lost: nothing to take back yet
    closed = api.stripe_fake.close_dispute(dispute_id, won=False)
    assert (await api.deliver(closed)).is_success
    queued = await api.query(
        lambda s: s.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.topic == "card.transfer_reversal")
        ).all()
    )
    assert queued == [{"orderId": checkout["orderId"]}]

    assert await reverse() == "reversed"
    assert await reverse() == "reversed"  # a second run: Stripe's idempotency key, one reversal
    transfer = api.stripe_fake.get_object(charge["transfer"])
    assert (transfer["amount"], transfer["amount_reversed"], transfer["reversed"]) == (
        4655,
        4655,
        True,
    )
    async with api.user(provider) as client:
        balance = (await client.get("/api/v1/provider/card-balance")).json()
    assert balance["pending"] == [{"amount": "0", "currency": "usd"}]
    audits = await api.query(
        lambda s: s.scalars(
            select(AuditEntry).where(AuditEntry.action == "connect.transfer_reversed")
        ).all()
    )
    assert len(audits) == 1 and audits[0].after["amount"] == "4655"
    assert account_id == transfer["destination"]
