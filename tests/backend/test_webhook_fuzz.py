"""Arbitrary correctly signed bodies at the Stripe webhook: never a 5xx, never a state change.

Whoever holds the webhook secret (or a bug at the sender) can post any JSON. The app stores it,
answers 200 or 400, and acts only on objects re-fetched from Stripe; here every body refers to
objects Stripe does not have or to an open, unpaid Checkout Session of a real pending order, so
nothing may change but the stored deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient
from support.api import (
    CERTIFICATE,
    CHAIN_ID,
    MARKET,
    PUBLIC_URL,
    FakeChain,
    make_settings,
    sign,
    signed_webhook_headers,
    siwe_text,
)
from support.db import create_migrated_database
from support.factories import account, make_course, seed_test_tokens

from backend.access.models import Entitlement
from backend.app import create_app
from backend.audit.models import AuditEntry
from backend.chain.deployment import Deployment
from backend.core.db import Database
from backend.core.ratelimit import MemoryRateLimiter
from backend.devtools.stripe_fake import StripeFake
from backend.orders.models import Order
from backend.outbox.models import OutboxMessage
from backend.webhooks.service import HANDLED

PROVIDER = account("webhook-fuzz-provider")
LEARNER = account("webhook-fuzz-learner")


@dataclass
class Target:
    """The app, its database and the open Checkout Session of its one pending order."""

    client: TestClient
    engine: Engine
    session_id: str

    def state(self) -> tuple[Any, ...]:
        """Everything a webhook could change, except the stored deliveries."""
        with Session(self.engine) as s:
            orders = s.execute(
                select(
                    Order.id,
                    Order.status,
                    Order.anomalies,
                    Order.stripe_checkout_session_id,
                    Order.stripe_payment_intent_id,
                    Order.stripe_charge_id,
                    Order.stripe_dispute_id,
                )
            ).all()
            counts = [
                s.scalar(select(func.count()).select_from(model))
                for model in (Entitlement, OutboxMessage, AuditEntry)
            ]
        return tuple(orders), tuple(counts)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, stripe_fake: StripeFake) -> Iterator[Target]:
    migrated = create_migrated_database("sqlite", Path(tmp_path_factory.mktemp("webhook-fuzz")))
    with Session(migrated.sync_engine()) as s, s.begin():
        seed_test_tokens(s)
        course_id = make_course(s, provider=PROVIDER.address, fiat_price=4900, currency="usd").id
    app = create_app(
        make_settings(migrated.url, stripe_api_base=stripe_fake.api_base),
        database=Database.from_url(migrated.url, pool_size=2),
        chain=FakeChain(),
        rate_limiter=MemoryRateLimiter(1_000_000),
        deployment=Deployment(chain_id=CHAIN_ID, market=MARKET, certificate=CERTIFICATE),
        seed=False,
    )
    with TestClient(app, base_url=PUBLIC_URL) as client:
        nonce = client.get("/api/v1/auth/nonce").json()["nonce"]
        text = siwe_text(LEARNER.address, nonce)
        token = client.post(
            "/api/v1/auth/verify",
            json={"message": text, "signature": sign(LEARNER, text)},
            headers={"Origin": PUBLIC_URL},
        ).json()["token"]
        checkout = client.post(
            "/api/v1/checkout/stripe",
            json={"courseId": course_id},
            headers={"Authorization": f"Bearer {token}", "Origin": PUBLIC_URL},
        )
        assert checkout.status_code == 201, checkout.text
        yield Target(client, migrated.sync_engine(), checkout.json()["sessionId"])


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def event_like(draw: st.DrawFn, open_session: str) -> Any:
    """Bodies close to a Stripe event, wrong in any field, about objects nothing may change."""
    object_id = draw(
        st.sampled_from([open_session, "cs_test_unknown", "ch_unknown", "dp_unknown", "py_1"])
        | json_values
    )
    obj = draw(st.fixed_dictionaries({"id": st.just(object_id)}, optional={"x": json_values}))
    return {
        "id": draw(st.uuids().map(lambda u: f"evt_{u.hex}") | json_values),
        "object": "event",
        "type": draw(st.sampled_from([*HANDLED, "customer.created"]) | json_values),
        "data": draw(st.just({"object": obj}) | json_values),
    }


def _bodies(open_session: str) -> st.SearchStrategy[bytes]:
    structured = event_like(open_session) | json_values
    return structured.map(lambda body: json.dumps(body).encode()) | st.binary(max_size=40)


def test_any_signed_body_gets_200_or_400_and_changes_nothing(target: Target) -> None:
    before = target.state()

    @given(body=_bodies(target.session_id))
    @settings(
        max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    def post(body: bytes) -> None:
        response = target.client.post(
            "/api/v1/webhooks/stripe", content=body, headers=signed_webhook_headers(body)
        )
        assert response.status_code in (200, 400), (body, response.text)
        if response.status_code == 400:
            assert response.json()["error"]["code"] in ("malformed_event", "invalid_signature")
        assert target.state() == before, body

    post()
