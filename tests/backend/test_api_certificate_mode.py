"""Certificate mode per course: the platform mints, or learners claim with a voucher."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from support.api import Api
from support.factories import account, make_course, make_grant

from backend.audit.models import AuditEntry
from backend.catalog.models import Course
from backend.certificates.models import Certificate
from backend.chain.deploy import DEMO_COURSES
from backend.devtools.demo_catalog import seed_demo_catalog
from backend.outbox.models import OutboxMessage

pytestmark = pytest.mark.anyio

PROVIDER = account("provider")
LEARNER = account("learner")


async def _complete_all(api: Api, course_id: int, lessons: int) -> dict[str, object]:
    await api.run(make_grant, address=LEARNER.address, course_id=course_id)
    async with api.user(LEARNER) as client:
        for n in range(1, lessons + 1):
            reply = await client.post(f"/api/v1/courses/{course_id}/lessons/{n}/complete")
            assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def test_provider_switches_a_course_to_voucher_certificates(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    base = f"/api/v1/provider/courses/{course.id}"
    async with api.user(PROVIDER) as client:
        before = (await client.get(f"/api/v1/courses/{course.id}")).json()
        switched = await client.patch(base, json={"certificateMode": "voucher"})
        bogus = await client.patch(base, json={"certificateMode": "airdrop"})
        after = (await client.get(f"/api/v1/courses/{course.id}")).json()
    assert before["certificateMode"] == "mint"
    assert switched.status_code == 200, switched.text
    assert switched.json()["certificateMode"] == after["certificateMode"] == "voucher"
    assert bogus.status_code == 422 and bogus.json()["error"]["code"] == "validation_error"
    audit = await api.query(
        lambda s: s.scalars(select(AuditEntry).where(AuditEntry.action == "course.update")).one()
    )
    assert audit.before is not None and audit.after is not None
    assert (audit.before["certificateMode"], audit.after["certificateMode"]) == ("mint", "voucher")


async def test_only_the_provider_may_change_the_certificate_mode(api: Api) -> None:
    course = await api.run(make_course, provider=PROVIDER.address)
    async with api.user(LEARNER) as client:
        refused = await client.patch(
            f"/api/v1/provider/courses/{course.id}", json={"certificateMode": "voucher"}
        )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_course_provider"
    assert (await api.query(lambda s: s.get_one(Course, course.id))).certificate_mode == "mint"


@pytest.mark.parametrize("mode", ["mint", "voucher"])
async def test_completion_requests_a_certificate_in_the_course_mode(api: Api, mode: str) -> None:
    course = await api.run(make_course, provider=PROVIDER.address, lessons=2, onchain_id=7)
    await api.run(lambda s: setattr(s.get_one(Course, course.id), "certificate_mode", mode))
    done = await _complete_all(api, course.id, 2)
    certificate = done["certificate"]
    assert isinstance(certificate, dict) and certificate["mode"] == mode
    stored = await api.query(lambda s: s.scalars(select(Certificate)).one())
    message = await api.query(
        lambda s: s.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "certificate.requested")
        ).one()
    )
    # The worker reads the mode from the certificate row and the message: both must say it.
    assert stored.mode == message.payload["mode"] == mode


async def test_demo_catalog_shows_both_certificate_modes(api: Api) -> None:
    provider = account("demo-provider").address
    await api.run(seed_demo_catalog, provider)
    await api.run(seed_demo_catalog, provider)  # re-seeding keeps the modes (and the rows)
    courses = await api.query(
        lambda s: s.scalars(select(Course).where(Course.provider == provider)).all()
    )
    modes = {c.title: c.certificate_mode for c in courses}
    assert len(courses) == len(DEMO_COURSES)
    assert modes.pop("Ethereum for Everyone") == "voucher"
    assert set(modes.values()) == {"mint"}
