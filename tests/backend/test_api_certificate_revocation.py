"""Revoking certificates from the product: a provider its own courses', an admin any; a reason
from a fixed list and a note, audited, stored, queued once."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import select
from support.api import Api
from support.factories import account, make_certificate, make_course

from backend.audit.models import AuditEntry
from backend.certificates.models import Certificate, CertificateStatus
from backend.outbox.models import OutboxMessage
from backend.outbox.service import Topics

pytestmark = pytest.mark.anyio

PROVIDER = account("revocation-provider")
OTHER = account("revocation-other-provider")
LEARNER = account("revocation-learner")
ADMIN = account("revocation-admin")
REVOKE = {"reasonCode": 2, "note": "copied the final exam"}
_ONCHAIN_IDS = itertools.count(41)


async def _minted(api: Api, provider: str = PROVIDER.address) -> int:
    course = await api.run(make_course, provider=provider, onchain_id=next(_ONCHAIN_IDS))
    cert = await api.run(make_certificate, course_id=course.id, address=LEARNER.address)
    return cert.id


async def _queued(api: Api) -> list[OutboxMessage]:
    return list(
        await api.query(
            lambda s: s.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == Topics.CERTIFICATE_REVOKE)
            ).all()
        )
    )


async def test_a_provider_revokes_its_own_certificate_once(api: Api) -> None:
    cert_id = await _minted(api)
    async with api.user(PROVIDER) as provider:
        first = await provider.post(f"/api/v1/provider/certificates/{cert_id}/revoke", json=REVOKE)
        again = await provider.post(
            f"/api/v1/provider/certificates/{cert_id}/revoke",
            json={"reasonCode": 1, "note": "changed my mind"},
        )
        listed = await provider.get("/api/v1/provider/certificates")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["revokeReasonCode"] == 2
    assert body["revokeReason"] == "academic misconduct: copied the final exam"
    assert body["revokeRequestedBy"] == f"provider:{PROVIDER.address}"
    assert body["revokeRequestedAt"] is not None and body["status"] == "minted"  # until the chain
    assert again.status_code == 200 and again.json()["revokeReasonCode"] == 2
    (message,) = await _queued(api)
    assert message.payload["certificateId"] == cert_id
    entries = await api.query(
        lambda s: s.scalars(
            select(AuditEntry).where(AuditEntry.action == "certificate.revoke_request")
        ).all()
    )
    assert [(e.actor, e.subject_id) for e in entries] == [
        (f"provider:{PROVIDER.address}", str(cert_id))
    ]
    assert [c["id"] for c in listed.json()] == [cert_id]
    assert listed.json()[0]["courseTitle"]


async def test_a_provider_cannot_revoke_another_providers_certificate(api: Api) -> None:
    cert_id = await _minted(api, provider=OTHER.address)
    async with api.user(PROVIDER) as provider:
        reply = await provider.post(f"/api/v1/provider/certificates/{cert_id}/revoke", json=REVOKE)
        listed = await provider.get("/api/v1/provider/certificates")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    assert listed.json() == []
    assert await _queued(api) == []
    cert = await api.query(lambda s: s.get(Certificate, cert_id))
    assert cert is not None and cert.revoke_requested_at is None


async def test_an_admin_revokes_any_certificate_found_by_its_token(api: Api) -> None:
    api.app.state.services.admins = frozenset({ADMIN.address})
    cert_id = await _minted(api, provider=OTHER.address)
    token_id = (await api.query(lambda s: s.get(Certificate, cert_id))).token_id  # type: ignore[union-attr]
    async with api.user(ADMIN) as admin:
        found = await admin.get(f"/api/v1/admin/certificates/by-token/{token_id}")
        missing = await admin.get("/api/v1/admin/certificates/by-token/12345")
        reply = await admin.post(
            f"/api/v1/admin/certificates/{cert_id}/revoke",
            json={"reasonCode": 3, "note": "the course was withdrawn"},
        )
    assert found.json()["id"] == cert_id and missing.status_code == 404
    assert reply.status_code == 200
    assert reply.json()["revokeRequestedBy"] == f"admin:{ADMIN.address}"
    assert reply.json()["revokeReason"] == "course withdrawn: the course was withdrawn"
    assert len(await _queued(api)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"reasonCode": 5, "note": "refund by hand"},
        {"reasonCode": 7, "note": "corrected by hand"},
        {"reasonCode": 2, "note": "x"},
        {"reasonCode": 2},
    ],
    ids=["refunded-is-automatic", "corrected-is-automatic", "note-too-short", "no-note"],
)
async def test_reasons_come_from_the_fixed_list_with_a_note(api: Api, body: dict[str, Any]) -> None:
    cert_id = await _minted(api)
    async with api.user(PROVIDER) as provider:
        reply = await provider.post(f"/api/v1/provider/certificates/{cert_id}/revoke", json=body)
    assert reply.status_code == 422
    assert await _queued(api) == []


async def test_a_certificate_not_on_chain_is_409(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, onchain_id=61)
    cert = await api.run(
        make_certificate,
        course_id=course.id,
        address=LEARNER.address,
        status=CertificateStatus.CLAIMABLE,
    )
    async with api.user(PROVIDER) as provider:
        reply = await provider.post(f"/api/v1/provider/certificates/{cert.id}/revoke", json=REVOKE)
    assert reply.status_code == 409 and reply.json()["error"]["code"] == "not_revocable"
