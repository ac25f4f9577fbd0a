"""The admin's verification of providers: reviewed records only, audited, queued once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from support.api import MARKET, Api
from support.factories import account, make_provider_profile

from backend.audit.models import AuditEntry
from backend.outbox.models import OutboxMessage
from backend.outbox.service import Topics
from backend.provider.models import ProviderVerificationRequest
from backend.provider.profiles import profile_hash

pytestmark = pytest.mark.anyio

ADMIN = account("verification-admin")
SCHOOL = account("verification-school")
OTHER = account("verification-other")
NAME, DOMAIN = "Solidity School", "solidity.school"
REVIEWED = profile_hash(NAME, DOMAIN)


def _url(address: str) -> str:
    return f"/api/v1/admin/providers/{address}/verification"


def _verify(reason: str = "checked the website") -> dict[str, Any]:
    return {"verified": True, "profileHash": REVIEWED, "reason": reason}


async def _queued(api: Api) -> list[OutboxMessage]:
    return list(
        await api.query(
            lambda s: s.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == Topics.PROVIDER_VERIFICATION)
            ).all()
        )
    )


async def _audit(api: Api) -> list[AuditEntry]:
    return list(
        await api.query(
            lambda s: s.scalars(
                select(AuditEntry)
                .where(AuditEntry.subject_type == "provider")
                .order_by(AuditEntry.id)
            ).all()
        )
    )


@pytest.fixture
def admin_api(api: Api) -> Api:
    api.app.state.services.admins = frozenset({ADMIN.address})
    return api


async def test_verifying_the_reviewed_record_is_audited_and_queued_once(admin_api: Api) -> None:
    api = admin_api
    await api.run(make_provider_profile, SCHOOL.address, NAME, DOMAIN)
    async with api.user(ADMIN) as admin:
        first = await admin.post(_url(SCHOOL.address.lower()), json=_verify())
        again = await admin.post(_url(SCHOOL.address), json=_verify("clicked twice"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["address"] == SCHOOL.address and body["verified"] is False  # until the chain
    request = body["latestRequest"]
    assert request["verify"] is True and request["profileHash"] == REVIEWED
    assert request["requestedBy"] == ADMIN.address and request["outcome"] is None
    assert again.json()["latestRequest"]["id"] == request["id"]
    (message,) = await _queued(api)
    assert message.payload == {"requestId": request["id"]}
    (entry,) = await _audit(api)
    assert (entry.actor, entry.action, entry.subject_id) == (
        f"admin:{ADMIN.address}",
        "provider.verify_requested",
        SCHOOL.address,
    )
    assert entry.before == {"verified": False, "profileHash": REVIEWED}
    assert entry.after == {"verified": True, "profileHash": REVIEWED, "requestId": request["id"]}
    assert entry.reason == "checked the website"


async def test_a_record_changed_after_the_review_is_not_verified(admin_api: Api) -> None:
    api = admin_api
    await api.run(make_provider_profile, SCHOOL.address, NAME, "other.school")
    async with api.user(ADMIN) as admin:
        stale = await admin.post(_url(SCHOOL.address), json=_verify())
        without_hash = await admin.post(
            _url(SCHOOL.address), json={"verified": True, "reason": "looks fine"}
        )
        malformed = await admin.post(
            _url(SCHOOL.address), json=_verify() | {"profileHash": "0x1234"}
        )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "profile_changed"
    assert without_hash.status_code == 422
    assert without_hash.json()["error"]["code"] == "profile_hash_required"
    assert malformed.status_code == 422
    assert await _queued(api) == [] and await _audit(api) == []


async def test_a_provider_without_a_record_is_404(admin_api: Api) -> None:
    async with admin_api.user(ADMIN) as admin:
        reply = await admin.post(_url(OTHER.address), json=_verify())
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "no_provider_profile"
    assert await _queued(admin_api) == []


async def test_what_the_chain_already_says_queues_nothing(admin_api: Api) -> None:
    api = admin_api
    await api.run(make_provider_profile, SCHOOL.address, NAME, DOMAIN, verified_by=MARKET)
    await api.run(make_provider_profile, OTHER.address, "Other School", "other.school")
    async with api.user(ADMIN) as admin:
        verified = await admin.post(_url(SCHOOL.address), json=_verify())
        unverified = await admin.post(
            _url(OTHER.address), json={"verified": False, "reason": "never was"}
        )
    assert verified.status_code == 200 and verified.json()["latestRequest"] is None
    assert unverified.status_code == 200 and unverified.json()["latestRequest"] is None
    assert await _queued(api) == [] and await _audit(api) == []


async def test_a_change_of_mind_while_pending_queues_the_new_decision(admin_api: Api) -> None:
    api = admin_api
    await api.run(make_provider_profile, SCHOOL.address, NAME, DOMAIN)
    async with api.user(ADMIN) as admin:
        verify = await admin.post(_url(SCHOOL.address), json=_verify())
        unverify = await admin.post(
            _url(SCHOOL.address), json={"verified": False, "reason": "wrong school"}
        )
    assert unverify.status_code == 200
    request = unverify.json()["latestRequest"]
    assert request["verify"] is False and request["profileHash"] is None
    assert request["id"] > verify.json()["latestRequest"]["id"]
    assert [m.payload["requestId"] for m in await _queued(api)] == [
        verify.json()["latestRequest"]["id"],
        request["id"],
    ]
    assert [e.action for e in await _audit(api)] == [
        "provider.verify_requested",
        "provider.unverify_requested",
    ]


async def test_the_review_list_puts_unverified_records_first(admin_api: Api) -> None:
    api = admin_api
    await api.run(make_provider_profile, SCHOOL.address, NAME, DOMAIN, verified_by=MARKET)
    await api.run(make_provider_profile, OTHER.address, "Other School", "other.school")
    async with api.user(ADMIN) as admin:
        asked = await admin.post(
            _url(OTHER.address),
            json={
                "verified": True,
                "profileHash": profile_hash("Other School", "other.school"),
                "reason": "reviewed",
            },
        )
        listed = await admin.get("/api/v1/admin/providers")
    assert asked.status_code == 200, asked.text
    assert listed.status_code == 200
    rows = listed.json()
    assert [r["address"] for r in rows] == [OTHER.address, SCHOOL.address]
    assert rows[0]["latestRequest"]["verify"] is True and rows[1]["latestRequest"] is None
    requests = await api.query(lambda s: s.scalars(select(ProviderVerificationRequest)).all())
    assert len(requests) == 1


async def test_each_chains_record_is_reviewed_and_verified_on_its_own_chain(
    admin_api: Api,
) -> None:
    from backend.chain.deployment import Deployment

    api, other_chain = admin_api, 31338
    api.app.state.services.deployment_sources = {
        other_chain: lambda: Deployment(chain_id=other_chain, market=MARKET)
    }
    # The school published a record on the other chain only.
    await api.run(make_provider_profile, SCHOOL.address, NAME, DOMAIN, chain_id=other_chain)
    async with api.user(ADMIN) as admin:
        here = (await admin.get("/api/v1/admin/providers")).json()
        there = (await admin.get(f"/api/v1/admin/providers?chainId={other_chain}")).json()
        missing_here = await admin.post(_url(SCHOOL.address), json=_verify())
        verified_there = await admin.post(
            f"{_url(SCHOOL.address)}?chainId={other_chain}", json=_verify()
        )
    assert [p["address"] for p in here] == []
    assert [p["address"] for p in there] == [SCHOOL.address]
    assert missing_here.status_code == 404
    assert verified_there.status_code == 200, verified_there.text
    (request,) = await api.query(lambda s: s.scalars(select(ProviderVerificationRequest)).all())
    assert request.chain_id == other_chain
