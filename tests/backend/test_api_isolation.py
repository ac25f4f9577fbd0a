"""Every scoped endpoint, tried by everyone it does not belong to.

One provider (P1) owns a published course with lessons, prices and a draft; one learner (L1)
bought it by card (order, Checkout Session, entitlement, certificate). Each operation that takes
an object id, or answers from the caller's own data, is called by a second provider, a learner
with nothing, the learner who bought the course, the owner where it is not the owner's
operation, and anonymously. Each must answer 401/403/404 (or, for "my data" listings, 200 with
none of P1's or L1's objects), reveal nothing of the objects, and leave every row as it was.

The list of operations comes from the OpenAPI document: an operation that is neither here nor
in PUBLIC fails `test_every_operation_has_an_isolation_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from support.api import Api
from support.factories import (
    NATIVE,
    account,
    make_certificate,
    make_course,
    make_provider_profile,
)

from backend.access.models import Entitlement
from backend.access.service import grant_access
from backend.catalog.models import Course, CourseChain, Lesson, TokenPrice
from backend.certificates.models import Certificate
from backend.core.db import utcnow
from backend.learning.models import LessonProgress
from backend.orders.models import Order, OrderStatus
from backend.orders.service import create_card_order
from backend.outbox.models import OutboxMessage
from backend.payouts.models import ConnectAccount
from backend.provider.models import ProviderProfile, ProviderVerificationRequest
from backend.provider.profiles import profile_hash

pytestmark = pytest.mark.anyio

P1 = account("isolation-owner")
P2 = account("isolation-other-provider")
L1 = account("isolation-buyer")
L2 = account("isolation-stranger")
ADMIN = account("isolation-admin")
ACTORS = {"P1": P1, "P2": P2, "L1": L1, "L2": L2}

TITLE = "Secret Sauce Course"
DRAFT_TITLE = "Unreleased Draft Course"
LESSON = "SECRET-LESSON-BODY-7f3a"
SESSION_ID = "cs_test_isolation_1234567890"
P1_CONNECT = "acct_isolationP1secret"
ONCHAIN_ID = 77
P1_NAME = "Isolation Owner School"

# Operations that are public by design, with the reason.
PUBLIC = {
    "GET /api/v1/courses": "the published catalog",
    "GET /api/v1/courses/{course_id}": "a published course (drafts only for their provider: "
    "checked below)",
    "GET /api/v1/courses/{course_id}/access": "the access check anyone (an LMS, a gate) may ask",
    "POST /api/v1/courses/{course_id}/claim": "any signed-in learner claims a free course",
    "POST /api/v1/orders/crypto": "any signed-in buyer quotes a purchase",
    "POST /api/v1/checkout/stripe": "any signed-in buyer starts a card checkout",
    "POST /api/v1/webhooks/stripe": "Stripe's signature is the authentication",
    "GET /api/v1/auth/nonce": "sign-in",
    "POST /api/v1/auth/verify": "sign-in",
    "POST /api/v1/auth/logout": "sign-out",
    "GET /api/v1/auth/me": "the caller's own session",
    "PATCH /api/v1/auth/me": "the caller's own profile",
    "POST /api/v1/provider/courses": "creates a course of the caller",
    "POST /api/v1/provider/profile/tx": "builds the caller's own setProviderProfile transaction "
    "(nothing stored; the wallet signs as itself)",
    "GET /api/v1/providers/{address}": "a provider's public on-chain record",
    "GET /api/v1/certificates/{token_id}/verification": "anyone verifies a certificate (from "
    "the chain)",
    "POST /api/v1/certificates/{token_id}/verification": "anyone checks a document against a "
    "certificate (nothing stored)",
    "GET /healthz": "liveness",
    "GET /readyz": "readiness",
    "GET /api/v1/config": "the web app's public configuration",
    "POST /api/v1/provider/connect/onboarding": "creates or resumes the caller's own Connect "
    "account (no id taken; test_api_connect checks a second provider gets its own)",
}


@dataclass(frozen=True)
class World:
    """The ids of P1's and L1's objects."""

    course_id: int
    draft_id: int
    order_id: str
    certificate_id: int
    token_id: int

    def secrets(self) -> list[str]:
        """What no intruder may see."""
        return [
            TITLE,
            DRAFT_TITLE,
            LESSON,
            SESSION_ID,
            P1_CONNECT,
            self.order_id,
            L1.address.lower(),
        ]


@dataclass(frozen=True)
class Case:
    """One operation: how to call it, and who it belongs to."""

    method: str
    path: str  # the OpenAPI path template
    owners: frozenset[str]  # actors allowed to use it on these objects
    body: Callable[[World], Any] | None = None
    query: Callable[[World], dict[str, Any]] = field(default=lambda w: {})
    listing: bool = False  # answers from the caller's own data: 200 for anyone signed in

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, w: World) -> str:
        return self.path.format(
            course_id=w.course_id,
            n=1,
            order_id=w.order_id,
            address=P1.address,
            certificate_id=w.certificate_id,
            token_id=w.token_id,
        )


def _owners(*names: str) -> frozenset[str]:
    return frozenset(names)


CASES = [
    # provider-scoped, by course id
    Case("PATCH", "/api/v1/provider/courses/{course_id}", _owners("P1"), lambda w: {"title": "X"}),
    Case(
        "PUT",
        "/api/v1/provider/courses/{course_id}/fiat-price",
        _owners("P1"),
        lambda w: {"amount": "1", "currency": "usd"},
    ),
    Case("DELETE", "/api/v1/provider/courses/{course_id}/fiat-price", _owners("P1")),
    Case(
        "PUT",
        "/api/v1/provider/courses/{course_id}/lessons/{n}",
        _owners("P1"),
        lambda w: {"title": "Hijacked", "body": "x"},
    ),
    Case(
        "PUT",
        "/api/v1/provider/courses/{course_id}/onchain-id",
        _owners("P1"),
        lambda w: {"onchainId": ONCHAIN_ID},
    ),
    Case("POST", "/api/v1/provider/courses/{course_id}/tx/create-course", _owners("P1")),
    Case(
        "POST",
        "/api/v1/provider/courses/{course_id}/tx/set-price",
        _owners("P1"),
        lambda w: {"token": NATIVE, "price": "1"},
    ),
    Case(
        "POST",
        "/api/v1/provider/courses/{course_id}/tx/refund",
        _owners("P1"),
        lambda w: {"orderId": w.order_id},
    ),
    # orders and checkout, by order id or session id
    Case("GET", "/api/v1/orders/{order_id}", _owners("P1", "L1")),
    Case("POST", "/api/v1/orders/{order_id}/refund", _owners("P1")),
    Case("GET", "/api/v1/checkout/stripe/{order_id}", _owners("L1")),
    Case(
        "GET", "/api/v1/checkout/stripe", _owners("L1"), query=lambda w: {"sessionId": SESSION_ID}
    ),
    # learning, by course id
    Case("GET", "/api/v1/courses/{course_id}/lessons/{n}", _owners("P1", "L1")),
    Case("POST", "/api/v1/courses/{course_id}/lessons/{n}/complete", _owners("L1")),
    Case("GET", "/api/v1/courses/{course_id}/progress", _owners("P1", "L1")),
    # admin
    Case(
        "POST",
        "/api/v1/admin/entitlements/grant",
        _owners(),
        lambda w: {"address": L2.address, "courseId": w.course_id, "reason": "sneaky"},
    ),
    Case(
        "POST",
        "/api/v1/admin/entitlements/revoke",
        _owners(),
        lambda w: {"address": L1.address, "courseId": w.course_id, "reason": "sneaky"},
    ),
    Case("GET", "/api/v1/admin/providers", _owners()),
    Case("GET", "/api/v1/admin/orders/review", _owners()),
    Case(
        "POST",
        "/api/v1/admin/orders/{order_id}/accept",
        _owners(),
        lambda w: {"reason": "sneaky"},
    ),
    Case("GET", "/api/v1/admin/certificates/by-token/{token_id}", _owners()),
    Case(
        "POST",
        "/api/v1/admin/certificates/{certificate_id}/revoke",
        _owners(),
        lambda w: {"reasonCode": 1, "note": "sneaky"},
    ),
    # provider-scoped, by certificate id
    Case(
        "POST",
        "/api/v1/provider/certificates/{certificate_id}/revoke",
        _owners("P1"),
        lambda w: {"reasonCode": 2, "note": "sneaky"},
    ),
    Case(
        "POST",
        "/api/v1/admin/providers/{address}/verification",
        _owners(),
        lambda w: {
            "verified": True,
            "profileHash": profile_hash(P1_NAME, "secret.example"),
            "reason": "sneaky",
        },
    ),
    Case(
        "GET",
        "/api/v1/admin/audit",
        _owners(),
        query=lambda w: {"subjectType": "course", "subjectId": str(w.course_id)},
    ),
    # my data: everyone signed in gets 200, with only their own objects
    Case("GET", "/api/v1/provider/courses", _owners("P1"), listing=True),
    Case("GET", "/api/v1/provider/certificates", _owners("P1"), listing=True),
    Case("GET", "/api/v1/provider/sales", _owners("P1"), listing=True),
    Case("GET", "/api/v1/provider/payouts", _owners("P1"), listing=True),
    Case("GET", "/api/v1/provider/balances", _owners("P1"), listing=True),
    Case("GET", "/api/v1/provider/connect", _owners("P1"), listing=True),
    Case("GET", "/api/v1/provider/card-balance", _owners("P1"), listing=True),
    Case(
        "POST",
        "/api/v1/provider/tx/withdraw",
        _owners("P1"),
        lambda w: {"token": NATIVE},
        listing=True,
    ),
    Case("GET", "/api/v1/me/orders", _owners("L1"), listing=True),
    Case("GET", "/api/v1/me/entitlements", _owners("L1"), listing=True),
    Case("GET", "/api/v1/me/certificates", _owners("L1"), listing=True),
]


def _build(s: Session) -> World:
    course = make_course(
        s,
        provider=P1.address,
        title=TITLE,
        onchain_id=ONCHAIN_ID,
        lessons=0,
        prices={NATIVE: 10**16},
        fiat_price=4900,
        currency="usd",
    )
    s.add(Lesson(course_id=course.id, position=1, title="One", body=LESSON))
    draft = make_course(s, provider=P1.address, title=DRAFT_TITLE, status="draft")
    order = create_card_order(s, course=course, buyer=L1.address, amount=4900, currency="usd")
    order.status = OrderStatus.PAID
    order.paid_at = utcnow()
    order.stripe_checkout_session_id = SESSION_ID
    grant_access(
        s,
        address=L1.address,
        course_id=course.id,
        source="card",
        order_id=order.id,
        actor="test",
        reason="paid",
        on_chain=False,
    )
    certificate = make_certificate(s, course_id=course.id, address=L1.address)
    make_course(s, provider=P2.address, title="P2's own course")
    make_provider_profile(s, P1.address, P1_NAME, "secret.example")
    s.add(
        ConnectAccount(
            provider=P1.address,
            stripe_account_id=P1_CONNECT,
            details_submitted=True,
            charges_enabled=True,
            payouts_enabled=True,
            requirements_due=[],
        )
    )
    s.flush()
    assert certificate.token_id is not None
    return World(course.id, draft.id, order.id, certificate.id, int(certificate.token_id))


def _snapshot(s: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row an intruder could try to change."""

    def rows(model: Any, *columns: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in s.execute(select(*columns).order_by(*columns[:1])).all()]

    return {
        "courses": rows(
            Course,
            Course.id,
            Course.title,
            Course.status,
            Course.fiat_price,
            Course.provider,
        ),
        "registrations": rows(CourseChain, CourseChain.id, CourseChain.onchain_id),
        "lessons": rows(Lesson, Lesson.id, Lesson.title, Lesson.body),
        "prices": rows(TokenPrice, TokenPrice.id, TokenPrice.price, TokenPrice.accepted),
        "orders": rows(Order, Order.id, Order.status, Order.amount),
        "entitlements": rows(Entitlement, Entitlement.id, Entitlement.revoked_at),
        "certificates": rows(
            Certificate, Certificate.id, Certificate.status, Certificate.revoke_requested_at
        ),
        "progress": rows(LessonProgress, LessonProgress.id),
        "outbox": rows(OutboxMessage, OutboxMessage.id),
        "provider_profiles": rows(
            ProviderProfile, ProviderProfile.address, ProviderProfile.verified
        ),
        "verification_requests": rows(ProviderVerificationRequest, ProviderVerificationRequest.id),
        "connect_accounts": rows(
            ConnectAccount, ConnectAccount.provider, ConnectAccount.charges_enabled
        ),
    }


def test_every_operation_has_an_isolation_case(shared_app: Any) -> None:
    operations = {
        f"{method.upper()} {path}"
        for path, ops in shared_app.openapi()["paths"].items()
        for method in ops
    }
    covered = {case.key for case in CASES} | set(PUBLIC)
    assert operations - covered == set(), "new operations need an isolation case"
    assert covered - operations == set(), "cases for operations that no longer exist"


INTRUSIONS = [
    pytest.param(case, actor, id=f"{case.method} {case.path} as {actor}")
    for case in CASES
    for actor in ("P1", "P2", "L1", "L2", "anonymous")
    if actor not in case.owners
]


@pytest.mark.parametrize(("case", "actor"), INTRUSIONS)
async def test_intruders_are_refused_and_learn_nothing(api: Api, case: Case, actor: str) -> None:
    world = await api.run(_build)
    api.chain.courses[ONCHAIN_ID] = P1.address
    api.app.state.services.admins = frozenset({ADMIN.address})
    before = await api.query(_snapshot)
    kwargs: dict[str, Any] = {"params": case.query(world)}
    if case.body is not None:
        kwargs["json"] = case.body(world)
    if actor == "anonymous":
        async with api.client() as client:
            response = await client.request(case.method, case.url(world), **kwargs)
    else:
        async with api.user(ACTORS[actor]) as client:
            response = await client.request(case.method, case.url(world), **kwargs)
    if case.listing and actor != "anonymous":
        assert response.status_code == 200, response.text
    else:
        assert response.status_code in (401, 403, 404), response.text
        assert set(response.json()) == {"error"}
    text = response.text.lower()
    # An id the intruder sent may be echoed back ("order X does not exist"): that is no leak.
    sent = f"{case.url(world)} {kwargs}".lower()
    revealed = [s for s in world.secrets() if s.lower() in text and s.lower() not in sent]
    assert revealed == [], f"{case.key} showed {actor} {revealed}"
    assert await api.query(_snapshot) == before, f"{case.key} changed data for {actor}"


@pytest.mark.parametrize("actor", ["P2", "L1", "L2", "anonymous"])
async def test_a_draft_is_invisible_to_everyone_but_its_provider(api: Api, actor: str) -> None:
    world = await api.run(_build)
    path = f"/api/v1/courses/{world.draft_id}"
    if actor == "anonymous":
        async with api.client() as client:
            response = await client.get(path)
    else:
        async with api.user(ACTORS[actor]) as client:
            response = await client.get(path)
    assert response.status_code == 404
    assert DRAFT_TITLE.lower() not in response.text.lower()
