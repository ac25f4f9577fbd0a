"""Races that need real commits: one nonce verified twice at once, one Stripe event delivered
several times at once. Exactly one wins; nobody gets a 500."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy import func, select
from support.api import Api, sign, siwe_text
from support.factories import account, make_course

from backend.access.models import Entitlement
from backend.auth.models import AuthSession
from backend.webhooks.models import StripeEvent

pytestmark = pytest.mark.anyio

ALICE = account("alice")
PROVIDER = account("provider")


async def test_one_nonce_verified_concurrently_opens_exactly_one_session(
    committed_api: Api,
) -> None:
    api = committed_api
    async with api.client() as client:
        nonce = (await client.get("/api/v1/auth/nonce")).json()["nonce"]
        text = siwe_text(ALICE.address, nonce)
        body = {"message": text, "signature": sign(ALICE, text)}
        responses = await asyncio.gather(
            *(client.post("/api/v1/auth/verify", json=body) for _ in range(4))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401, 401, 401], [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 401} == {"nonce_used"}
    sessions = await api.query(lambda s: s.scalar(select(func.count()).select_from(AuthSession)))
    assert sessions == 1


async def test_concurrent_duplicate_deliveries_are_all_acknowledged_and_applied_once(
    committed_api: Api,
) -> None:
    api = committed_api
    course = await api.run(make_course, provider=PROVIDER.address, fiat_price=4900, currency="usd")
    async with api.user(ALICE) as client:
        checkout = (
            await client.post("/api/v1/checkout/stripe", json={"courseId": course.id})
        ).json()
    event = api.stripe_fake.complete_session(checkout["sessionId"])
    responses = await asyncio.gather(*(api.deliver(event) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["paid"] * 5
    assert sum(not r.json()["duplicate"] for r in responses) == 1
    entitlements = await api.query(
        lambda s: s.scalars(select(Entitlement).where(Entitlement.course_id == course.id)).all()
    )
    assert len(entitlements) == 1
    stored = await api.query(lambda s: s.scalars(select(StripeEvent)).all())
    assert len(stored) == 1 and stored[0].deliveries == 5 and stored[0].processed


async def test_access_check_on_the_production_read_path_sees_committed_changes(
    committed_api: Api,
) -> None:
    """The hot path's own pool (asyncpg on PostgreSQL, an autocommit reader on SQLite) sees
    every committed grant and revoke at once: nothing is cached."""
    from support.factories import make_grant

    from backend.access.service import revoke_access

    api = committed_api
    course = await api.run(make_course, provider=PROVIDER.address)
    url = f"/api/v1/courses/{course.id}/access"
    async with api.client() as client:
        before = (await client.get(url, params={"address": ALICE.address})).json()
        entitlement = await api.run(make_grant, address=ALICE.address, course_id=course.id)
        granted = (await client.get(url, params={"address": ALICE.address.lower()})).json()
        await api.run(
            revoke_access,
            address=ALICE.address,
            course_id=course.id,
            order_id=None,
            actor="test",
            reason="test",
            on_chain=False,
        )
        revoked = (await client.get(url, params={"address": ALICE.address})).json()
        unknown = await client.get(
            f"/api/v1/courses/{course.id + 1000}/access", params={"address": ALICE.address}
        )
    assert before["hasAccess"] is False
    assert granted["hasAccess"] is True and granted["source"] == "grant"
    assert datetime.fromisoformat(granted["since"]) == entitlement.granted_at
    assert revoked["hasAccess"] is False
    assert unknown.status_code == 404
