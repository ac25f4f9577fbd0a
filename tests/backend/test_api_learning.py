"""Lessons for entitled learners, progress, and the certificate hand-off."""

from __future__ import annotations

import json

import pytest
from eth_utils import keccak
from sqlalchemy import select
from support.api import CHAIN_ID, Api
from support.factories import account, make_course, make_grant

from backend.certificates.models import Certificate
from backend.certificates.service import canonical_record_bytes, request_certificate
from backend.core.errors import ForbiddenError
from backend.outbox.models import OutboxMessage

pytestmark = pytest.mark.anyio

PROVIDER = account("provider")
LEARNER = account("learner")


async def test_lesson_requires_an_entitlement(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, lessons=2)
    async with api.user(LEARNER) as client:
        refused = await client.get(f"/api/v1/courses/{course.id}/lessons/1")
        complete = await client.post(f"/api/v1/courses/{course.id}/lessons/1/complete")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_entitled"
    assert "Body" not in refused.text
    assert complete.status_code == 403


async def test_entitled_learner_and_provider_read_lessons(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, lessons=2)
    await api.run(make_grant, address=LEARNER.address, course_id=course.id)
    async with api.user(LEARNER) as learner, api.user(PROVIDER) as provider:
        lesson = await learner.get(f"/api/v1/courses/{course.id}/lessons/2")
        own = await provider.get(f"/api/v1/courses/{course.id}/lessons/1")
        missing = await learner.get(f"/api/v1/courses/{course.id}/lessons/3")
    assert lesson.json() == {
        "courseId": course.id,
        "position": 2,
        "title": "Lesson 2",
        "body": "Body of lesson 2",
    }
    assert own.status_code == 200
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "lesson_not_found"


async def test_anonymous_lesson_request_is_a_401(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, lessons=1)
    async with api.client() as client:
        response = await client.get(f"/api/v1/courses/{course.id}/lessons/1")
    assert response.status_code == 401


async def test_completing_every_lesson_requests_one_certificate(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, lessons=2, onchain_id=5)
    await api.run(make_grant, address=LEARNER.address, course_id=course.id)
    base = f"/api/v1/courses/{course.id}/lessons"
    async with api.user(LEARNER) as client:
        first = (await client.post(f"{base}/1/complete")).json()
        repeat = (await client.post(f"{base}/1/complete")).json()
        last = (await client.post(f"{base}/2/complete")).json()
        again = (await client.post(f"{base}/2/complete")).json()
        mine = (await client.get("/api/v1/me/certificates")).json()
    assert (first["completed"], first["total"], first["certificate"]) == (1, 2, None)
    assert repeat["completed"] == 1
    certificate = last["certificate"]
    assert last["completed"] == 2 and certificate["status"] == "requested"
    assert again["certificate"]["id"] == certificate["id"]
    assert [c["id"] for c in mine] == [certificate["id"]]
    assert certificate["tokenId"] == str((5 << 160) | int(LEARNER.address, 16))
    # Token ids repeat across chains: the certificate names its own.
    assert certificate["chainId"] == CHAIN_ID
    record = certificate["record"]
    assert record["learner"] == LEARNER.address and len(record["salt"]) == 66
    expected = "0x" + keccak(canonical_record_bytes(record))[:28].hex()
    assert certificate["recordHash"] == expected
    messages = await api.query(
        lambda s: s.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "certificate.requested")
        ).all()
    )
    assert len(messages) == 1
    assert messages[0].payload["certificateId"] == certificate["id"]
    assert messages[0].payload["recordHash"] == expected


async def test_request_certificate_is_idempotent(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    await api.run(make_grant, address=LEARNER.address, course_id=course.id)
    first = await api.run(
        request_certificate,
        address=LEARNER.address,
        course_id=course.id,
        default_chain_id=CHAIN_ID,
    )
    second = await api.run(
        request_certificate,
        address=LEARNER.address.lower(),
        course_id=course.id,
        default_chain_id=CHAIN_ID,
    )
    assert first.id == second.id
    assert first.token_id is None  # the course is not on-chain yet
    rows = await api.query(lambda s: s.scalars(select(Certificate)).all())
    assert len(rows) == 1


def test_canonical_record_encoding_is_sorted_compact_utf8() -> None:
    record = {"b": 1, "a": "é", "c": {"z": None, "y": [1, 2]}}
    encoded = canonical_record_bytes(record)
    assert encoded == '{"a":"é","b":1,"c":{"y":[1,2],"z":null}}'.encode()
    assert json.loads(encoded) == record


async def test_provider_previews_but_earns_nothing_from_its_own_course(api: Api) -> None:
    """Reading is not earning: the provider may open its lessons, not complete them, and no
    certificate is requested for it (published course or draft alike)."""
    published = await api.run(make_course, provider=PROVIDER.address, lessons=1, onchain_id=8)
    draft = await api.run(
        make_course, provider=PROVIDER.address, lessons=1, status="draft", onchain_id=9
    )
    async with api.user(PROVIDER) as provider:
        for course in (published, draft):
            read = await provider.get(f"/api/v1/courses/{course.id}/lessons/1")
            done = await provider.post(f"/api/v1/courses/{course.id}/lessons/1/complete")
            assert read.status_code == 200
            assert done.status_code == 403 and done.json()["error"]["code"] == "not_entitled"
    assert await api.query(lambda s: s.scalars(select(Certificate)).all()) == []
    with pytest.raises(ForbiddenError):
        await api.run(
            request_certificate,
            address=PROVIDER.address,
            course_id=published.id,
            default_chain_id=CHAIN_ID,
        )


async def test_a_draft_earns_nothing_even_for_a_learner_with_access(api: Api) -> None:
    draft = await api.run(make_course, provider=PROVIDER.address, lessons=1, status="draft")
    await api.run(make_grant, address=LEARNER.address, course_id=draft.id)
    async with api.user(LEARNER) as learner:
        read = await learner.get(f"/api/v1/courses/{draft.id}/lessons/1")
        done = await learner.post(f"/api/v1/courses/{draft.id}/lessons/1/complete")
    assert read.status_code == 200
    assert done.status_code == 409 and done.json()["error"]["code"] == "course_not_published"
    assert await api.query(lambda s: s.scalars(select(Certificate)).all()) == []
