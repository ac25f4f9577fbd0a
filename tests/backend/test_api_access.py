"""The access check (hot path), free claims and admin grants."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from support.api import Api
from support.factories import account, make_course, make_grant

from backend.access.models import Entitlement
from backend.access.service import entitlement_ref, revoke_access
from backend.audit.models import AuditEntry
from backend.catalog.models import CourseStatus
from backend.outbox.models import OutboxMessage

pytestmark = pytest.mark.anyio

PROVIDER = account("provider")
LEARNER = account("learner")
ADMIN = account("admin")


async def _access(api: Api, course_id: int, address: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with api.client() as client:
        response = await client.get(
            f"/api/v1/courses/{course_id}/access", params={"address": address}
        )
    return response.status_code, response.json()


async def test_access_is_false_without_an_entitlement(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    assert await _access(api, course.id, LEARNER.address) == (
        200,
        {"hasAccess": False, "source": None, "since": None},
    )


async def test_access_reports_source_and_since_for_any_address_case(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    grant = await api.run(make_grant, address=LEARNER.address, course_id=course.id)
    for address in (LEARNER.address, LEARNER.address.lower(), "0x" + LEARNER.address[2:].upper()):
        status, body = await _access(api, course.id, address)
        assert status == 200
        assert body["hasAccess"] is True and body["source"] == "grant"
        assert datetime.fromisoformat(body["since"]) == grant.granted_at


async def test_revoked_access_is_false(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    await api.run(make_grant, address=LEARNER.address, course_id=course.id)
    await api.run(
        revoke_access,
        address=LEARNER.address,
        course_id=course.id,
        order_id=None,
        actor="test",
        reason="test",
        on_chain=False,
    )
    assert (await _access(api, course.id, LEARNER.address))[1]["hasAccess"] is False


@pytest.mark.parametrize(
    "address",
    [
        "0x1234",
        "not-an-address",
        "0x" + "g" * 40,
        "0xa94F094B633F24749ABBa60DFa673f8C5Df9E851",  # mixed case, wrong checksum
    ],
)
async def test_invalid_address_is_a_422(api: Api, address: str) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    status, body = await _access(api, course.id, address)
    assert status == 422
    assert body["error"]["code"] == "invalid_address"


async def test_missing_address_or_bad_course_id_is_a_422_and_unknown_course_a_404(
    api: Api,
) -> None:
    async with api.client() as client:
        missing = await client.get("/api/v1/courses/1/access")
        bad_ids = [
            await client.get(
                f"/api/v1/courses/{course_id}/access", params={"address": LEARNER.address}
            )
            for course_id in ("abc", "0", "-1", "99999999999", "\u0661")
        ]
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "validation_error"
    assert [r.status_code for r in bad_ids] == [422] * 5
    status, body = await _access(api, 987654, LEARNER.address)
    assert status == 404 and body["error"]["code"] == "course_not_found"


async def test_free_course_can_be_claimed_once(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, fiat_price=0)
    async with api.user(LEARNER) as client:
        first = await client.post(f"/api/v1/courses/{course.id}/claim")
        second = await client.post(f"/api/v1/courses/{course.id}/claim")
    assert first.status_code == second.status_code == 200
    assert first.json()["source"] == "free"
    rows = await api.query(
        lambda s: s.scalars(select(Entitlement).where(Entitlement.course_id == course.id)).all()
    )
    assert len(rows) == 1


async def _chain_messages(api: Api) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    rows = await api.query(
        lambda s: s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    )
    return [(m.topic, m.payload) for m in rows if m.topic.startswith("access.")]


async def test_free_claim_is_queued_for_the_chain_with_its_entitlement(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, fiat_price=0)
    async with api.user(LEARNER) as client:
        await client.post(f"/api/v1/courses/{course.id}/claim")
        await client.post(f"/api/v1/courses/{course.id}/claim")
        mine = (await client.get("/api/v1/me/entitlements")).json()
    (row,) = mine
    assert (row["source"], row["chainStatus"], row["chainTxHash"]) == ("free", "pending", None)
    assert await _chain_messages(api) == [("access.chain_grant", {"entitlementId": row["id"]})]
    ent = await api.query(lambda s: s.get(Entitlement, row["id"]))
    assert ent.chain_ref == entitlement_ref(row["id"])


async def test_paid_or_unpublished_course_cannot_be_claimed(api: Api) -> None:
    paid = await api.run(make_course, provider=PROVIDER.address, fiat_price=100)
    draft = await api.run(
        make_course, provider=PROVIDER.address, fiat_price=0, status=CourseStatus.DRAFT
    )
    async with api.user(LEARNER) as client:
        not_free = await client.post(f"/api/v1/courses/{paid.id}/claim")
        hidden = await client.post(f"/api/v1/courses/{draft.id}/claim")
    assert not_free.status_code == 409 and not_free.json()["error"]["code"] == "not_free"
    assert hidden.status_code == 404


async def test_claim_requires_sign_in(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, fiat_price=0)
    async with api.client() as client:
        response = await client.post(f"/api/v1/courses/{course.id}/claim")
    assert response.status_code == 401


async def test_admin_grants_and_revokes_with_an_audit_trail(api: Api) -> None:
    api.app.state.services.admins = frozenset({ADMIN.address})
    course = await api.run(make_course, provider=PROVIDER.address)
    payload = {"address": LEARNER.address.lower(), "courseId": course.id, "reason": "scholarship"}
    async with api.user(ADMIN) as admin:
        granted = await admin.post("/api/v1/admin/entitlements/grant", json=payload)
        again = await admin.post("/api/v1/admin/entitlements/grant", json=payload)
        revoked = await admin.post(
            "/api/v1/admin/entitlements/revoke", json=payload | {"reason": "mistake"}
        )
        nothing = await admin.post("/api/v1/admin/entitlements/revoke", json=payload)
        audit = await admin.get("/api/v1/admin/audit", params={"subjectType": "entitlement"})
    assert granted.status_code == 200 and granted.json()["source"] == "grant"
    assert again.json()["id"] == granted.json()["id"]
    assert revoked.json()["active"] is False and revoked.json()["revokeReason"] == "mistake"
    assert nothing.status_code == 404
    actions = [entry["action"] for entry in audit.json()]
    assert actions == ["access.revoke", "access.grant"]
    assert audit.json()[1]["actor"] == f"admin:{ADMIN.address}"
    assert audit.json()[1]["reason"] == "scholarship"


async def test_admin_grant_and_revoke_are_queued_for_the_chain(api: Api) -> None:
    api.app.state.services.admins = frozenset({ADMIN.address})
    course = await api.run(make_course, provider=PROVIDER.address)
    payload = {"address": LEARNER.address, "courseId": course.id, "reason": "scholarship"}
    async with api.user(ADMIN) as admin:
        granted = (await admin.post("/api/v1/admin/entitlements/grant", json=payload)).json()
        await admin.post("/api/v1/admin/entitlements/grant", json=payload)
        revoked = (await admin.post("/api/v1/admin/entitlements/revoke", json=payload)).json()
    assert granted["chainStatus"] == "pending"
    assert revoked["chainStatus"] == "revoke_pending"
    assert await _chain_messages(api) == [
        ("access.chain_grant", {"entitlementId": granted["id"]}),
        ("access.chain_revoke", {"entitlementId": granted["id"]}),
    ]


async def test_admin_cannot_revoke_a_purchase_made_on_chain(api: Api) -> None:
    api.app.state.services.admins = frozenset({ADMIN.address})
    course = await api.run(make_course, provider=PROVIDER.address)
    await api.run(
        make_grant, address=LEARNER.address, course_id=course.id, source="crypto", on_chain=True
    )
    payload = {"address": LEARNER.address, "courseId": course.id, "reason": "please"}
    async with api.user(ADMIN) as admin:
        response = await admin.post("/api/v1/admin/entitlements/revoke", json=payload)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "purchase_needs_refund"
    assert (await _access(api, course.id, LEARNER.address))[1]["hasAccess"] is True
    assert await _chain_messages(api) == []


async def test_admin_endpoints_refuse_non_admins(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    payload = {"address": LEARNER.address, "courseId": course.id, "reason": "please"}
    async with api.user(LEARNER) as client:
        response = await client.post("/api/v1/admin/entitlements/grant", json=payload)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_admin"
    count = await api.query(lambda s: len(s.scalars(select(AuditEntry)).all()))
    assert count == 0
