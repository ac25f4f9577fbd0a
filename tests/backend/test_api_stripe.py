"""Card payments against the Stripe stand-in (the real SDK over HTTP, signed webhooks).

Every webhook is delivered by the test (`api.deliver`), so order, repeats and timing are under
the test's control; the payloads and signatures are exactly what Stripe sends.
"""

from __future__ import annotations

import copy
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from support.api import Api
from support.factories import account, make_certificate, make_course, make_grant

from backend.access.models import Entitlement
from backend.audit.models import AuditEntry
from backend.certificates.models import Certificate
from backend.checkout.expiry import expire_stale_card_orders
from backend.integrations.stripe_gateway import (
    StripeGateway,
    checkout_signing_key,
    signed_checkout_fields,
)
from backend.orders.models import Order
from backend.outbox.models import OutboxMessage
from backend.webhooks.models import StripeEvent

pytestmark = pytest.mark.anyio

PROVIDER = account("provider")
LEARNER = account("learner")
STRANGER = account("stranger")
ADMIN = account("admin")


async def _paid_course(api: Api, **kwargs: Any) -> int:
    course = await api.run(
        make_course, provider=PROVIDER.address, fiat_price=4900, currency="usd", **kwargs
    )
    return course.id


async def _checkout(api: Api, client: httpx.AsyncClient, course_id: int) -> dict[str, Any]:
    response = await client.post("/api/v1/checkout/stripe", json={"courseId": course_id})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _order(api: Api, order_id: str) -> Order:
    return await api.query(lambda s: s.get_one(Order, order_id))


async def _entitlements(api: Api, course_id: int) -> list[Entitlement]:
    return list(
        await api.query(
            lambda s: s.scalars(
                select(Entitlement)
                .where(Entitlement.course_id == course_id)
                .order_by(Entitlement.id)
            ).all()
        )
    )


async def _active(api: Api, course_id: int) -> int:
    return sum(1 for e in await _entitlements(api, course_id) if e.revoked_at is None)


async def _topics(api: Api) -> list[str]:
    return list(
        await api.query(
            lambda s: s.scalars(select(OutboxMessage.topic).order_by(OutboxMessage.id)).all()
        )
    )


async def _ok(api: Api, event: dict[str, Any]) -> dict[str, Any]:
    response = await api.deliver(event)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_checkout_creates_a_pending_order_and_a_stripe_session(api: Api) -> None:
    course_id = await _paid_course(api, title="Card course")
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
        again = await _checkout(api, client, course_id)  # double click: same order and session
        status = (await client.get(f"/api/v1/checkout/stripe/{checkout['orderId']}")).json()
    assert again == checkout
    session = api.stripe_fake.get_object(checkout["sessionId"])
    assert checkout["url"] == session["url"]
    assert session["amount_total"] == 4900 and session["currency"] == "usd"
    assert session["mode"] == "payment"
    order = await _order(api, checkout["orderId"])
    # The order, signed: a database restored from before the checkout can rebuild it.
    assert session["metadata"] == {
        "order_id": checkout["orderId"],
        "order_ref": order.order_ref,
        "course_id": str(course_id),
        "address": LEARNER.address,
        "amount": "4900",
        "currency": "usd",
        "fee": "0",
        "signature": session["metadata"]["signature"],  # no destination: the platform's sale
    }
    key = checkout_signing_key(api.settings)
    assert signed_checkout_fields(session["metadata"], key) is not None
    assert signed_checkout_fields({**session["metadata"], "amount": "1"}, key) is None
    assert session["success_url"] == (
        "http://tuition.test/checkout/return?session_id={CHECKOUT_SESSION_ID}"
    )
    order = await _order(api, checkout["orderId"])
    assert (order.rail, order.status, order.amount, order.currency) == (
        "card",
        "pending",
        4900,
        "usd",
    )
    assert order.stripe_checkout_session_id == checkout["sessionId"]
    assert status == {
        "orderId": checkout["orderId"],
        "status": "pending",
        "hasAccess": False,
        "courseId": course_id,
        "courseTitle": "Card course",
        "amount": "4900",
        "currency": "usd",
    }


async def test_return_url_from_stripe_finds_the_order_without_its_id(api: Api) -> None:
    course_id = await _paid_course(api, title="Card course")
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
        # The hosted page's Pay button: Stripe fills {CHECKOUT_SESSION_ID} into success_url.
        code, location = api.stripe_fake.pay(checkout["sessionId"])
        assert code == 303
        url = httpx.URL(location)
        assert (url.host, url.path) == ("tuition.test", "/checkout/return")
        session_id = url.params["session_id"]
        assert session_id == checkout["sessionId"]
        before = await client.get("/api/v1/checkout/stripe", params={"sessionId": session_id})
        by_order = await client.get(f"/api/v1/checkout/stripe/{checkout['orderId']}")
        [completed] = [
            e
            for e in api.stripe_fake.events("checkout.session.completed")
            if e["data"]["object"]["id"] == session_id
        ]
        await _ok(api, completed)
        after = await client.get("/api/v1/checkout/stripe", params={"sessionId": session_id})
    assert before.status_code == 200, before.text
    assert before.json() == by_order.json()
    assert before.json()["orderId"] == checkout["orderId"]
    assert before.json()["status"] == "pending"
    assert after.json()["status"] == "paid" and after.json()["hasAccess"] is True


async def test_checkout_session_lookup_answers_only_the_buyer(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
        unknown = await client.get("/api/v1/checkout/stripe", params={"sessionId": "cs_test_nope"})
        missing = await client.get("/api/v1/checkout/stripe")
    async with api.user(STRANGER) as stranger:
        foreign = await stranger.get(
            "/api/v1/checkout/stripe", params={"sessionId": checkout["sessionId"]}
        )
    async with api.client() as anonymous:
        signed_out = await anonymous.get(
            "/api/v1/checkout/stripe", params={"sessionId": checkout["sessionId"]}
        )
    # Someone else's session looks exactly like one that does not exist.
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"] == "order_not_found"
    assert set(foreign.json()["error"]) >= {"code", "message"}
    assert signed_out.status_code == 401
    assert missing.status_code == 422


async def test_checkout_is_refused_when_it_cannot_be_sold(api: Api) -> None:
    entitled = await _paid_course(api)
    await api.run(make_grant, address=LEARNER.address, course_id=entitled)
    no_price = (await api.run(make_course, provider=PROVIDER.address)).id
    free = (await api.run(make_course, provider=PROVIDER.address, fiat_price=0)).id
    draft = await _paid_course(api, status="draft")
    async with api.user(LEARNER) as client:
        results = {
            name: await client.post("/api/v1/checkout/stripe", json={"courseId": cid})
            for name, cid in {
                "entitled": entitled,
                "no_price": no_price,
                "free": free,
                "draft": draft,
                "missing": 999_999,
            }.items()
        }
    codes = {name: (r.status_code, r.json()["error"]["code"]) for name, r in results.items()}
    assert codes == {
        "entitled": (409, "already_entitled"),
        "no_price": (409, "no_fiat_price"),
        "free": (409, "free_course"),
        "draft": (404, "course_not_found"),
        "missing": (404, "course_not_found"),
    }
    orders = await api.query(lambda s: s.scalars(select(Order)).all())
    assert orders == []


async def test_checkout_requires_sign_in(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.client() as client:
        response = await client.post("/api/v1/checkout/stripe", json={"courseId": course_id})
    assert response.status_code == 401


async def test_completed_payment_grants_access_once_however_often_delivered(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
        event = api.stripe_fake.complete_session(checkout["sessionId"])
        first = await _ok(api, event)
        repeats = [await _ok(api, event) for _ in range(3)]
        status = (await client.get(f"/api/v1/checkout/stripe/{checkout['orderId']}")).json()
        access = (
            await client.get(
                f"/api/v1/courses/{course_id}/access", params={"address": LEARNER.address}
            )
        ).json()
    assert first["outcome"] == "paid" and first["duplicate"] is False
    assert all(r["duplicate"] for r in repeats)
    assert status["status"] == "paid" and status["hasAccess"] is True
    assert access["hasAccess"] is True and access["source"] == "card"
    entitlements = await _entitlements(api, course_id)
    assert len(entitlements) == 1 and entitlements[0].order_id == checkout["orderId"]
    order = await _order(api, checkout["orderId"])
    assert order.stripe_payment_intent_id and order.stripe_payment_intent_id.startswith("pi_")
    assert await _topics(api) == ["access.chain_grant", "email.receipt"]
    stored = await api.query(
        lambda s: s.scalars(select(StripeEvent).where(StripeEvent.event_id == event["id"])).one()
    )
    assert stored.deliveries == 4 and stored.processed and stored.signature_valid
    assert stored.raw_body.startswith(b"{") and "stripe-signature" in stored.headers


async def test_refund_seen_before_completion_never_grants(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    completed = api.stripe_fake.complete_session(checkout["sessionId"])
    charge_id = api.stripe_fake.get_object(
        api.stripe_fake.get_object(checkout["sessionId"])["payment_intent"]
    )["latest_charge"]
    refunded = api.stripe_fake.refund_charge(charge_id)
    assert (await _ok(api, refunded))["outcome"] == "refunded"
    assert (await _ok(api, completed))["outcome"] == "noop:refunded"
    assert (await _order(api, checkout["orderId"])).status == "refunded"
    assert await _entitlements(api, course_id) == []


async def test_refund_after_payment_revokes_and_a_late_completion_does_not_restore(
    api: Api,
) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    completed = api.stripe_fake.complete_session(checkout["sessionId"])
    await _ok(api, completed)
    order = await _order(api, checkout["orderId"])
    refunded = api.stripe_fake.refund_charge(_charge_of(api, checkout["sessionId"]))
    assert (await _ok(api, refunded))["outcome"] == "refunded"
    late = copy.deepcopy(completed)
    late["id"] = completed["id"] + "late"  # a distinct, validly signed, older-state event
    assert (await _ok(api, late))["outcome"] == "noop:refunded"
    assert (await _order(api, order.id)).status == "refunded"
    assert await _active(api, course_id) == 0
    assert await _topics(api) == [
        "access.chain_grant",
        "email.receipt",
        "access.chain_revoke",
        "email.receipt",
    ]
    receipts = await api.query(
        lambda s: s.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.topic == "email.receipt")
        ).all()
    )
    assert [r.get("kind", "paid") for r in receipts] == ["paid", "refunded"]


def _charge_of(api: Api, session_id: str) -> str:
    intent = api.stripe_fake.get_object(session_id)["payment_intent"]
    return str(api.stripe_fake.get_object(intent)["latest_charge"])


async def test_dispute_revokes_and_a_won_dispute_restores_access(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"]))
    opened = api.stripe_fake.open_dispute(_charge_of(api, checkout["sessionId"]))
    assert (await _ok(api, opened))["outcome"] == "disputed"
    assert await _active(api, course_id) == 0
    closed = api.stripe_fake.close_dispute(opened["data"]["object"]["id"], won=True)
    assert (await _ok(api, closed))["outcome"] == "dispute_won"
    assert (await _ok(api, opened))["duplicate"] is True  # the old event again: nothing
    entitlements = await _entitlements(api, course_id)
    assert [e.revoked_at is None for e in entitlements] == [False, True]
    assert (await _order(api, checkout["orderId"])).status == "paid"
    assert await _topics(api) == [
        "access.chain_grant",
        "email.receipt",
        "access.chain_revoke",
        "access.chain_grant",
    ]


async def test_lost_dispute_keeps_access_revoked_in_any_order(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    completed = api.stripe_fake.complete_session(checkout["sessionId"])
    opened = api.stripe_fake.open_dispute(_charge_of(api, checkout["sessionId"]))
    closed = api.stripe_fake.close_dispute(opened["data"]["object"]["id"], won=False)
    # Delivered backwards: closed (lost), opened, completed.
    assert (await _ok(api, closed))["outcome"] == "dispute_lost"
    assert (await _ok(api, opened))["outcome"] == "noop:lost"
    assert (await _ok(api, completed))["outcome"] == "noop:lost"
    assert (await _order(api, checkout["orderId"])).status == "lost"
    assert await _entitlements(api, course_id) == []


async def test_async_payment_grants_only_once_it_succeeds(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    completed = api.stripe_fake.complete_session(checkout["sessionId"], async_payment=True)
    assert (await _ok(api, completed))["outcome"] == "processing"
    assert await _entitlements(api, course_id) == []
    # Expiry leaves a processing order alone, however long the payment takes.
    assert await _run_expiry(api, checkout["orderId"], timedelta(days=5)) == {}
    assert (await _order(api, checkout["orderId"])).status == "processing"
    # Meanwhile a second checkout could take the money twice: refused.
    async with api.user(LEARNER) as client:
        again = await client.post("/api/v1/checkout/stripe", json={"courseId": course_id})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "payment_in_progress"
    succeeded = api.stripe_fake.succeed_async_payment(checkout["sessionId"])
    assert (await _ok(api, succeeded))["outcome"] == "paid"
    assert await _active(api, course_id) == 1


async def test_failed_async_payment_fails_the_order(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"], async_payment=True))
    failed = api.stripe_fake.fail_async_payment(checkout["sessionId"])
    assert (await _ok(api, failed))["outcome"] == "failed"
    assert (await _order(api, checkout["orderId"])).status == "failed"
    assert await _entitlements(api, course_id) == []


async def test_expired_session_expires_the_order(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    expired = api.stripe_fake.expire_session(checkout["sessionId"])
    assert (await _ok(api, expired))["outcome"] == "expired"
    assert (await _order(api, checkout["orderId"])).status == "expired"


async def test_partial_refund_keeps_access_and_flags_the_order(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"]))
    partial = api.stripe_fake.refund_charge(_charge_of(api, checkout["sessionId"]), amount=900)
    assert (await _ok(api, partial))["outcome"] == "partial_refund"
    order = await _order(api, checkout["orderId"])
    assert order.status == "paid" and order.anomalies[0]["field"] == "partial_refund"
    assert await _active(api, course_id) == 1


async def test_bad_signature_is_a_400_stored_and_cannot_squat_the_event_id(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    forged = await api.deliver(event, secret="whsec_not_the_secret")
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "invalid_signature"
    body, headers = api.stripe_fake.signed_payload(
        event, secret=api.settings.stripe_webhook_secret.get_secret_value()
    )  # type: ignore[union-attr]
    async with api.client() as client:
        tampered = await client.post(
            "/api/v1/webhooks/stripe", content=body.replace(b"4900", b"4901"), headers=headers
        )
        unsigned = await client.post("/api/v1/webhooks/stripe", content=body)
    assert tampered.status_code == unsigned.status_code == 400
    assert (await _order(api, checkout["orderId"])).status == "pending"
    rows = await api.query(lambda s: s.scalars(select(StripeEvent)).all())
    assert [(r.signature_valid, r.event_id, r.claimed_event_id) for r in rows] == [
        (False, None, event["id"])
    ] * 3
    assert (await _ok(api, event))["outcome"] == "paid"  # the genuine delivery still works


async def test_unset_webhook_secret_rejects_everything(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    secret = api.settings.stripe_webhook_secret
    api.settings.stripe_webhook_secret = None
    try:
        response = await api.deliver(event, secret=secret.get_secret_value())  # type: ignore[union-attr]
    finally:
        api.settings.stripe_webhook_secret = secret
    assert response.status_code == 400
    assert (await _order(api, checkout["orderId"])).status == "pending"


async def test_stale_signature_timestamp_is_rejected(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    body, headers = api.stripe_fake.signed_payload(
        event,
        secret=api.settings.stripe_webhook_secret.get_secret_value(),  # type: ignore[union-attr]
        timestamp=int(time.time()) - 3600,
    )
    async with api.client() as client:
        response = await client.post("/api/v1/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400


async def test_unhandled_event_types_are_acknowledged_and_ignored(api: Api) -> None:
    event = {
        "id": "evt_custom_1",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    assert (await _ok(api, event))["outcome"] == "ignored"


async def test_a_lost_card_order_is_rebuilt_from_its_signed_checkout_session(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    original = await _order(api, checkout["orderId"])
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    # The database was restored from a backup taken before this checkout: no order here.
    await api.run(lambda s: s.delete(s.get_one(Order, checkout["orderId"])))
    assert (await _ok(api, event))["outcome"] == "paid"
    order = await _order(api, checkout["orderId"])
    fields = ("buyer", "amount", "currency", "fee", "order_ref", "stripe_checkout_session_id")
    assert [getattr(order, f) for f in fields] == [getattr(original, f) for f in fields]
    assert order.status == "paid" and order.anomalies[0]["field"] == "rebuilt"
    assert await _active(api, course_id) == 1
    rebuilt = await api.query(
        lambda s: s.scalars(select(AuditEntry).where(AuditEntry.action == "order.rebuilt")).all()
    )
    assert [a.subject_id for a in rebuilt] == [checkout["orderId"]]


async def test_a_checkout_session_this_application_did_not_sign_settles_nothing(
    api: Api,
) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    genuine = api.stripe_fake.get_object(checkout["sessionId"])["metadata"]
    gateway = StripeGateway(api.settings)
    for metadata in (
        {"order_id": checkout["orderId"]},  # made elsewhere in the account, naming our order
        {**genuine, "amount": "1"},  # our fields, altered
        genuine,  # our signed fields on another session
    ):
        other = await gateway.client().v1.checkout.sessions.create_async(
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 1,
                            "product_data": {"name": "Cheap"},
                        },
                    }
                ],
                "metadata": metadata,
                "success_url": "http://elsewhere.test/ok",
            }
        )
        event = api.stripe_fake.complete_session(other.id)
        assert (await _ok(api, event))["outcome"] == "unknown_order"
    assert (await _order(api, checkout["orderId"])).status == "pending"
    assert await _active(api, course_id) == 0


async def test_stripe_outage_while_processing_is_a_500_and_the_retry_succeeds(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    gateway = api.app.state.services.stripe
    real_fetch = gateway.fetch

    async def down(kind: str, object_id: str) -> dict[str, Any]:
        raise RuntimeError("Stripe is down")

    monkeypatch.setattr(gateway, "fetch", down)
    failed = await api.deliver(event)
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "webhook_processing_failed"
    stored = await api.query(lambda s: s.scalars(select(StripeEvent)).one())
    assert (stored.processed, stored.attempts) == (False, 1) and "Stripe is down" in stored.error
    monkeypatch.setattr(gateway, "fetch", real_fetch)
    retried = await _ok(api, event)
    assert retried["outcome"] == "paid"


async def test_provider_refunds_a_card_order_through_stripe(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
        await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"]))
        not_mine = await client.post(f"/api/v1/orders/{checkout['orderId']}/refund")
    async with api.user(PROVIDER) as provider:
        first = await provider.post(f"/api/v1/orders/{checkout['orderId']}/refund")
        second = await provider.post(f"/api/v1/orders/{checkout['orderId']}/refund")
    assert not_mine.status_code == 403
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "refund_requested"
    assert second.json()["refundId"] == first.json()["refundId"]  # idempotency key refund:<id>
    assert await _active(api, course_id) == 1  # access goes when Stripe confirms
    api.stripe_fake.wait_for_deliveries()
    charge_id = _charge_of(api, checkout["sessionId"])
    [refunded] = [
        e
        for e in api.stripe_fake.events("charge.refunded")
        if e["data"]["object"]["id"] == charge_id
    ]
    assert (await _ok(api, refunded))["outcome"] == "refunded"
    assert await _active(api, course_id) == 0
    async with api.user(PROVIDER) as provider:
        again = await provider.post(f"/api/v1/orders/{checkout['orderId']}/refund")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_refundable"


async def test_my_orders_and_entitlements_cover_the_card_rail(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
        await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"]))
        orders = (await client.get("/api/v1/me/orders")).json()
        entitlements = (await client.get("/api/v1/me/entitlements")).json()
        one = await client.get(f"/api/v1/orders/{checkout['orderId']}")
    async with api.user(STRANGER) as stranger:
        hidden = await stranger.get(f"/api/v1/orders/{checkout['orderId']}")
        status = await stranger.get(f"/api/v1/checkout/stripe/{checkout['orderId']}")
    assert [(o["id"], o["rail"], o["amount"], o["currency"]) for o in orders] == [
        (checkout["orderId"], "card", "4900", "usd")
    ]
    assert entitlements[0]["source"] == "card" and entitlements[0]["active"] is True
    assert one.status_code == 200
    assert hidden.status_code == 404 and status.status_code == 404


async def _certified(api: Api, course_id: int) -> int:
    """A minted certificate of the learner for the course; returns its id."""
    cert = await api.run(
        make_certificate, course_id=course_id, address=LEARNER.address, status="minted"
    )
    return cert.id


async def _certificate(api: Api, certificate_id: int) -> Certificate:
    return await api.query(lambda s: s.get_one(Certificate, certificate_id))


async def test_card_refund_revokes_the_minted_certificate_as_refunded(api: Api) -> None:
    course_id = await _paid_course(api, onchain_id=21)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"]))
    cert_id = await _certified(api, course_id)
    refunded = api.stripe_fake.refund_charge(_charge_of(api, checkout["sessionId"]))
    assert (await _ok(api, refunded))["outcome"] == "refunded"
    cert = await _certificate(api, cert_id)
    assert (cert.revoke_reason_code, cert.revoke_requested_by) == (5, "stripe")
    assert (await _topics(api)).count("certificate.revoke") == 1


async def test_lost_dispute_revokes_the_certificate_as_disputed_a_won_one_keeps_it(
    api: Api,
) -> None:
    won_course = await _paid_course(api, onchain_id=22)
    lost_course = await _paid_course(api, onchain_id=23)
    outcomes = {}
    for course_id, won in ((won_course, True), (lost_course, False)):
        async with api.user(LEARNER) as client:
            checkout = await _checkout(api, client, course_id)
        await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"]))
        cert_id = await _certified(api, course_id)
        opened = api.stripe_fake.open_dispute(_charge_of(api, checkout["sessionId"]))
        assert (await _ok(api, opened))["outcome"] == "disputed"
        assert (await _certificate(api, cert_id)).revoke_requested_at is None, "may still win"
        closed = api.stripe_fake.close_dispute(opened["data"]["object"]["id"], won=won)
        await _ok(api, closed)
        outcomes[won] = (await _certificate(api, cert_id)).revoke_reason_code
    assert outcomes == {True: None, False: 6}
    assert (await _topics(api)).count("certificate.revoke") == 1


# ------------------------------------------------------------------ hostile but signed input

MALFORMED = {
    "array": b"[]",
    "string": b'"evt_1"',
    "null": b"null",
    "number": b"7",
    "not json": b"{not json",
    "no id": b'{"type": "checkout.session.completed", "data": {"object": {"id": "cs_1"}}}',
    "id not a string": b'{"id": 1, "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}',
    "id not an event id": b'{"id": "cs_1", "type": "x.y", "data": {"object": {}}}',
    "type not a string": b'{"id": "evt_1", "type": ["charge.refunded"], "data": {"object": {}}}',
    "data a list": b'{"id": "evt_1", "type": "charge.refunded", "data": []}',
    "data a string": b'{"id": "evt_1", "type": "charge.refunded", "data": "ch_1"}',
    "object a list": b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": []}}',
    "object id a number": (
        b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": {"id": 12}}}'
    ),
    "object id a path": (
        b'{"id": "evt_1", "type": "checkout.session.completed",'
        b' "data": {"object": {"id": "cs_1/../../v1/charges"}}}'
    ),
    "object id empty": (
        b'{"id": "evt_1", "type": "charge.dispute.created", "data": {"object": {"id": ""}}}'
    ),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_signed_body_that_is_not_a_stripe_event_is_a_400_stored_as_rejected(
    api: Api, body: bytes
) -> None:
    response = await api.deliver_raw(body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_event"
    stored = await api.query(lambda s: s.scalars(select(StripeEvent)).one())
    assert stored.signature_valid and stored.processed
    assert (stored.event_id, stored.outcome) == (None, "rejected:malformed")
    assert stored.error and stored.raw_body == body


async def test_signed_body_that_is_not_utf8_is_a_400(api: Api) -> None:
    # The SDK verifies the signature over text: such a body fails verification itself.
    response = await api.deliver_raw(b'{"id": "evt_\xff"}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"


async def test_malformed_body_cannot_squat_the_id_of_a_real_event(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    squat = {**event, "data": []}
    assert (await api.deliver(squat)).status_code == 400
    assert (await _ok(api, event))["outcome"] == "paid"


@pytest.mark.parametrize(
    ("event_type", "object_id"),
    [
        ("checkout.session.completed", "cs_test_nobody_created_this"),
        ("checkout.session.completed", "ch_a_charge_sent_as_a_session"),
        ("charge.refunded", "ch_unknown"),
        ("charge.dispute.created", "dp_unknown"),
    ],
)
async def test_event_about_an_object_stripe_does_not_have_is_acknowledged_and_not_retried(
    api: Api, event_type: str, object_id: str
) -> None:
    event = {
        "id": f"evt_missing_{object_id}",
        "object": "event",
        "type": event_type,
        "data": {"object": {"id": object_id}},
    }
    reply = await _ok(api, event)
    assert reply["outcome"] == "rejected:object_not_found"
    stored = await api.query(lambda s: s.scalars(select(StripeEvent)).one())
    assert stored.processed and stored.error is None
    # Stripe's redelivery is answered from the stored outcome, without asking Stripe again.
    assert (await _ok(api, event))["duplicate"] is True


# ------------------------------------------------------------------ money taken, access decided


async def _run_expiry(api: Api, order_id: str, after: timedelta) -> dict[str, str]:
    """The expire-card-orders job, run `after` the order's expiry, on the test's connection."""
    order = await _order(api, order_id)
    assert order.expires_at is not None
    now = order.expires_at + after
    gateway = api.app.state.services.stripe

    def run(s: Any) -> dict[str, str]:
        factory = sessionmaker(
            bind=s.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        return expire_stale_card_orders(factory, gateway, now=now)

    return await api.run(run)


async def _expire_locally(api: Api, order_id: str) -> None:
    # An order expired without asking Stripe (by an earlier version, or while Stripe had no
    # record of the session): its payment may still arrive.
    await api.run(lambda s: setattr(s.get_one(Order, order_id), "status", "expired"))


async def test_stale_card_order_is_expired_at_stripe_then_here(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    assert await _run_expiry(api, checkout["orderId"], timedelta(seconds=-1)) == {}
    outcomes = await _run_expiry(api, checkout["orderId"], timedelta(seconds=1))
    assert outcomes == {checkout["orderId"]: "expired"}
    assert (await _order(api, checkout["orderId"])).status == "expired"
    # Nobody can pay it any more: Stripe's session is expired too.
    assert api.stripe_fake.get_object(checkout["sessionId"])["status"] == "expired"
    assert await _run_expiry(api, checkout["orderId"], timedelta(seconds=1)) == {}


async def test_expiry_finds_the_payment_a_delayed_webhook_has_not_brought_yet(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    delayed = api.stripe_fake.complete_session(checkout["sessionId"])  # not delivered yet
    outcomes = await _run_expiry(api, checkout["orderId"], timedelta(minutes=5))
    assert outcomes == {checkout["orderId"]: "paid"}
    assert await _active(api, course_id) == 1
    # The webhook arrives days later: nothing more happens.
    assert (await _ok(api, delayed))["outcome"] == "noop:paid"
    assert await _active(api, course_id) == 1


async def test_expiry_of_an_order_whose_session_stripe_does_not_have(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await api.run(
        lambda s: setattr(
            s.get_one(Order, checkout["orderId"]), "stripe_checkout_session_id", "cs_test_gone"
        )
    )
    outcomes = await _run_expiry(api, checkout["orderId"], timedelta(seconds=1))
    assert outcomes == {checkout["orderId"]: "expired"}


async def _audit_actions(api: Api, order_id: str) -> list[str]:
    rows = await api.query(
        lambda s: s.scalars(
            select(AuditEntry.reason).where(AuditEntry.subject_id == order_id)
        ).all()
    )
    return [str(r) for r in rows]


async def test_payment_stripe_completes_after_local_expiry_is_honoured(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await _expire_locally(api, checkout["orderId"])
    # The webhook was delayed past the order's expiry (an outage; Stripe retries for days).
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    assert (await _ok(api, event))["outcome"] == "paid"
    order = await _order(api, checkout["orderId"])
    assert order.status == "paid"
    assert [a["field"] for a in order.anomalies] == ["late_payment"]
    assert await _active(api, course_id) == 1
    assert any("honoured" in reason for reason in await _audit_actions(api, order.id))


async def test_late_payment_for_a_learner_with_access_by_then_needs_review(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await _expire_locally(api, checkout["orderId"])
    await api.run(make_grant, address=LEARNER.address, course_id=course_id)
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    assert (await _ok(api, event))["outcome"] == "needs_review"
    order = await _order(api, checkout["orderId"])
    assert order.status == "needs_review"
    assert [e.order_id for e in await _entitlements(api, course_id)] == [None]


@pytest.mark.parametrize(
    ("quoted_amount", "quoted_currency"), [(9900, "usd"), (4900, "jpy")], ids=["amount", "currency"]
)
async def test_payment_other_than_the_quote_grants_nothing_and_needs_review(
    api: Api, quoted_amount: int, quoted_currency: str
) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)

    def quote_differently(s: Any) -> None:
        # Stripe charged 49.00 USD; the order was quoted otherwise (a discount or a currency
        # conversion at Stripe, a bug): the quote is what the learner was promised to pay.
        order = s.get_one(Order, checkout["orderId"])
        order.amount, order.currency = quoted_amount, quoted_currency

    await api.run(quote_differently)
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    assert (await _ok(api, event))["outcome"] == "needs_review"
    order = await _order(api, checkout["orderId"])
    assert order.status == "needs_review"
    assert order.anomalies == [
        {"field": "amount", "quoted": f"{quoted_amount} {quoted_currency}", "paid": "4900 usd"}
    ]
    assert await _entitlements(api, course_id) == []
    # Redelivered: still nothing granted.
    assert (await _ok(api, event))["duplicate"] is True
    assert await _entitlements(api, course_id) == []


async def test_session_the_application_did_not_create_cannot_settle_an_order(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    # A 1.00 USD session made elsewhere in the Stripe account, naming the order in metadata.
    foreign = await api.app.state.services.stripe.client().v1.checkout.sessions.create_async(
        params={
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 100,
                        "product_data": {"name": "anything"},
                    },
                }
            ],
            "metadata": {"order_id": checkout["orderId"]},
            "success_url": "https://example.test/ok",
        }
    )
    event = api.stripe_fake.complete_session(foreign.id)
    assert (await _ok(api, event))["outcome"] == "unknown_order"
    assert (await _order(api, checkout["orderId"])).status == "pending"
    assert await _entitlements(api, course_id) == []


async def _order_needing_review(api: Api) -> tuple[int, dict[str, Any]]:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    await api.run(lambda s: setattr(s.get_one(Order, checkout["orderId"]), "amount", 9900))
    await _ok(api, api.stripe_fake.complete_session(checkout["sessionId"]))
    return course_id, checkout


async def test_admin_sees_payments_to_review_and_accepts_one(api: Api) -> None:
    course_id, checkout = await _order_needing_review(api)
    api.app.state.services.admins = frozenset({ADMIN.address})
    async with api.user(ADMIN) as client:
        listed = await client.get("/api/v1/admin/orders/review")
        assert listed.status_code == 200, listed.text
        assert [o["id"] for o in listed.json()] == [checkout["orderId"]]
        url = f"/api/v1/admin/orders/{checkout['orderId']}/accept"
        for _ in range(2):  # a repeated click changes nothing
            accepted = await client.post(url, json={"reason": "Stripe applied a coupon"})
            assert accepted.status_code == 200, accepted.text
            assert accepted.json()["status"] == "paid"
        assert (await client.get("/api/v1/admin/orders/review")).json() == []
    assert await _active(api, course_id) == 1
    assert any(
        "Stripe applied a coupon" in r for r in await _audit_actions(api, checkout["orderId"])
    )


async def test_admin_refunds_a_payment_to_review_and_it_ends_refunded(api: Api) -> None:
    course_id, checkout = await _order_needing_review(api)
    api.app.state.services.admins = frozenset({ADMIN.address})
    async with api.user(ADMIN) as client:
        refund = await client.post(f"/api/v1/orders/{checkout['orderId']}/refund")
        assert refund.status_code == 200, refund.text
        assert refund.json()["status"] == "refund_requested"
    charge_id = _charge_of(api, checkout["sessionId"])
    [refunded] = [
        e
        for e in api.stripe_fake.events("charge.refunded")
        if e["data"]["object"]["id"] == charge_id
    ]
    assert (await _ok(api, refunded))["outcome"] == "refunded"
    assert (await _order(api, checkout["orderId"])).status == "refunded"
    assert await _entitlements(api, course_id) == []


async def test_only_admins_see_or_decide_payments_to_review(api: Api) -> None:
    _, checkout = await _order_needing_review(api)
    async with api.user(LEARNER) as client:
        assert (await client.get("/api/v1/admin/orders/review")).status_code == 403
        url = f"/api/v1/admin/orders/{checkout['orderId']}/accept"
        assert (await client.post(url, json={"reason": "mine"})).status_code == 403
    assert (await _order(api, checkout["orderId"])).status == "needs_review"


async def test_accepting_an_order_that_does_not_need_review_is_a_409(api: Api) -> None:
    course_id = await _paid_course(api)
    async with api.user(LEARNER) as client:
        checkout = await _checkout(api, client, course_id)
    api.app.state.services.admins = frozenset({ADMIN.address})
    async with api.user(ADMIN) as client:
        url = f"/api/v1/admin/orders/{checkout['orderId']}/accept"
        response = await client.post(url, json={"reason": "give it away"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_in_review"
    assert await _entitlements(api, course_id) == []
