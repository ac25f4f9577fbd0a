"""The Stripe fake, driven by the real ``stripe`` SDK over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from backend.devtools.stripe_fake import (
    StripeFake,
    StripeFakeError,
    format_amount,
    parse_params,
    sign_payload,
)

API_KEY = "sk_test_devtools_suite"
WEBHOOK_SECRET = "whsec_devtools_suite"
SUCCESS_URL = "https://tuition.test/checkout/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://tuition.test/courses/rust-101"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[StripeFake]:
    with StripeFake(API_KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: StripeFake) -> Iterator[StripeFake]:
    server.configure_webhook(None)
    server.reset()
    yield server
    server.configure_webhook(None)


@pytest.fixture
def client(fake: StripeFake) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY, base_addresses={"api": fake.api_base}, max_network_retries=0
    )


@pytest.fixture
def http(fake: StripeFake) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.api_base, trust_env=False) as raw:
        yield raw


class Receiver:
    """A tiny webhook endpoint on a real socket that records what it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.on_request: Callable[[bytes], None] | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                if receiver.on_request is not None:
                    receiver.on_request(body)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe"

    def events(self) -> list[stripe.Event]:
        return [
            stripe.Webhook.construct_event(body, headers["Stripe-Signature"], WEBHOOK_SECRET)
            for headers, body in self.requests
        ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(fake: StripeFake) -> Iterator[Receiver]:
    endpoint = Receiver()
    fake.configure_webhook(endpoint.url, WEBHOOK_SECRET)
    yield endpoint
    fake.configure_webhook(None)
    endpoint.close()


def session_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "client_reference_id": "user_7",
        "customer_email": "ada@example.com",
        "metadata": {"order_id": "ord_42"},
        "payment_intent_data": {"metadata": {"order_id": "ord_42"}},
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 4900,
                    "product_data": {"name": "Rust 101"},
                },
            }
        ],
    }
    params.update(overrides)
    return params


def create_session(client: stripe.StripeClient, **overrides: Any) -> stripe.checkout.Session:
    return client.v1.checkout.sessions.create(params=session_params(**overrides))  # type: ignore[arg-type]


def paid_charge(client: stripe.StripeClient, fake: StripeFake) -> stripe.Charge:
    session = create_session(client)
    fake.complete_session(session.id)
    session = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    intent = session.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert isinstance(intent.latest_charge, stripe.Charge)
    return intent.latest_charge


# ------------------------------------------------------------------------------------ encoding


def test_parse_params_builds_nested_dicts_and_lists_like_stripe() -> None:
    parsed = parse_params(
        [
            ("line_items[0][price_data][unit_amount]", "4900"),
            ("line_items[0][quantity]", "1"),
            ("line_items[1][quantity]", "2"),
            ("metadata[0]", "zero"),
            ("metadata[order]", "42"),
            ("expand[]", "payment_intent"),
            ("expand[]", "line_items"),
            ("mode", "payment"),
        ]
    )
    assert parsed == {
        "line_items": [{"price_data": {"unit_amount": "4900"}, "quantity": "1"}, {"quantity": "2"}],
        "metadata": {"0": "zero", "order": "42"},
        "expand": ["payment_intent", "line_items"],
        "mode": "payment",
    }
    with pytest.raises(StripeFakeError) as conflict:
        parse_params([("metadata", "x"), ("metadata[a]", "y")])
    assert conflict.value.param == "metadata[a]"


def test_format_amount_uses_minor_units() -> None:
    assert format_amount(4900, "usd") == "$49.00"
    assert format_amount(123456, "eur") == "€1,234.56"
    assert format_amount(500, "jpy") == "¥500"
    assert format_amount(5, "chf") == "0.05 CHF"


# ------------------------------------------------------------------------------------ sessions


def test_create_and_retrieve_session_with_expand(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    session = create_session(client)

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.livemode is False
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.payment_intent is None
    assert session.amount_total == 4900
    assert session.currency == "usd"
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"order_id": "ord_42"}
    assert session.client_reference_id == "user_7"
    assert session.customer_email == "ada@example.com"
    assert session.url == f"{fake.api_base}/pay/{session.id}"
    assert session.expires_at - session.created == 24 * 60 * 60

    fake.complete_session(session.id)
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge", "line_items"]}
    )
    intent = expanded.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.status == "succeeded"
    assert intent.metadata.to_dict() == {"order_id": "ord_42"}
    assert isinstance(intent.latest_charge, stripe.Charge)
    assert intent.latest_charge.amount == 4900
    assert expanded.line_items is not None
    assert expanded.line_items.data[0].description == "Rust 101"

    plain = client.v1.checkout.sessions.retrieve(session.id)
    assert plain.payment_intent == intent.id

    with pytest.raises(stripe.InvalidRequestError) as bad_expand:
        client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["customer_email"]})
    assert bad_expand.value.param == "expand"


def test_module_level_api_reaches_the_fake(
    fake: StripeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_key", API_KEY)
    monkeypatch.setattr(stripe, "api_base", fake.api_base)

    session = stripe.checkout.Session.create(**session_params())
    fake.complete_session(session.id)
    again = stripe.checkout.Session.retrieve(session.id, expand=["payment_intent"])

    assert again.status == "complete"
    assert isinstance(again.payment_intent, stripe.PaymentIntent)
    assert again.payment_intent.amount_received == 4900


def test_session_with_several_items_totals_in_minor_units(client: stripe.StripeClient) -> None:
    item = {
        "quantity": 3,
        "price_data": {"currency": "eur", "unit_amount": 1999, "product_data": {"name": "Go"}},
    }
    session = create_session(client, line_items=[item, {**item, "quantity": 1}])
    assert session.amount_total == 4 * 1999
    assert session.currency == "eur"


def test_idempotent_create_replays_and_rejects_changed_params(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    first = client.v1.checkout.sessions.create(
        params=session_params(),  # type: ignore[arg-type]
        options={"idempotency_key": "order-42-attempt-1"},
    )
    second = client.v1.checkout.sessions.create(
        params=session_params(),  # type: ignore[arg-type]
        options={"idempotency_key": "order-42-attempt-1"},
    )
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["idempotent-replayed"] == "true"
    assert len(client.v1.checkout.sessions.list().data) == 1

    with pytest.raises(stripe.IdempotencyError) as changed:
        client.v1.checkout.sessions.create(
            params=session_params(client_reference_id="user_8"),  # type: ignore[arg-type]
            options={"idempotency_key": "order-42-attempt-1"},
        )
    assert changed.value.http_status == 400
    assert changed.value.error is not None
    assert changed.value.error.type == "idempotency_error"

    with pytest.raises(stripe.IdempotencyError):
        client.v1.refunds.create(
            params={"charge": "ch_x"}, options={"idempotency_key": "order-42-attempt-1"}
        )

    fresh = client.v1.checkout.sessions.create(
        params=session_params(),  # type: ignore[arg-type]
        options={"idempotency_key": "order-42-attempt-2"},
    )
    assert fresh.id != first.id


def _without_currency(params: dict[str, Any]) -> None:
    del params["line_items"][0]["price_data"]["currency"]


def _price(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(params: dict[str, Any]) -> None:
        params["line_items"][0]["price_data"].update(changes)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "param", "code"),
    [
        (_without_currency, "line_items[0][price_data][currency]", "parameter_missing"),
        (_price(unit_amount="49.5"), "line_items[0][price_data][unit_amount]", None),
        (_price(unit_amount=-1), "line_items[0][price_data][unit_amount]", None),
        (
            _price(product_data={"description": "x"}),
            "line_items[0][price_data][product_data][name]",
            None,
        ),
        (lambda p: p["line_items"][0].update(quantity=0), "line_items[0][quantity]", None),
        (lambda p: p.pop("success_url"), "success_url", "parameter_missing"),
        (lambda p: p.pop("line_items"), "line_items", "parameter_missing"),
        (lambda p: p.update(mode="subscribe"), "mode", None),
        (lambda p: p.update(colour="blue"), "colour", None),
        (lambda p: p.update(expires_at=int(time.time()) + 60), "expires_at", None),
        (lambda p: p.update(customer_email="not-an-email"), "customer_email", None),
        (lambda p: p.update(metadata={"k" * 41: "v"}), f"metadata[{'k' * 41}]", None),
    ],
)
def test_invalid_session_params_map_to_invalid_request_error(
    client: stripe.StripeClient,
    mutate: Callable[[dict[str, Any]], Any],
    param: str,
    code: str | None,
) -> None:
    params = session_params()
    mutate(params)
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    assert error.value.http_status == 400
    assert error.value.param == param
    if code is not None:
        assert error.value.code == code
    assert client.v1.checkout.sessions.list().data == []


@pytest.mark.parametrize(
    ("retrieve", "noun"),
    [
        (lambda c: c.v1.checkout.sessions.retrieve("cs_test_missing"), "checkout.session"),
        (lambda c: c.v1.payment_intents.retrieve("pi_missing"), "payment_intent"),
        (lambda c: c.v1.charges.retrieve("ch_missing"), "charge"),
        (lambda c: c.v1.refunds.retrieve("re_missing"), "refund"),
        (lambda c: c.v1.disputes.retrieve("dp_missing"), "dispute"),
        (lambda c: c.v1.events.retrieve("evt_missing"), "event"),
    ],
)
def test_unknown_ids_are_resource_missing(
    client: stripe.StripeClient, retrieve: Callable[[stripe.StripeClient], Any], noun: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        retrieve(client)
    assert error.value.http_status == 404
    assert error.value.code == "resource_missing"
    assert error.value.param == "id"
    assert f"No such {noun}" in str(error.value.user_message)


def test_wrong_or_missing_api_key_is_rejected(fake: StripeFake, http: httpx.Client) -> None:
    wrong = stripe.StripeClient(
        "sk_test_wrong_key_0000", base_addresses={"api": fake.api_base}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError) as error:
        wrong.v1.checkout.sessions.retrieve("cs_test_any")
    assert error.value.http_status == 401
    assert "Invalid API Key provided: sk_test_" in str(error.value.user_message)
    assert "wrong_key" not in str(error.value.user_message)

    anonymous = http.get("/v1/checkout/sessions/cs_test_any")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"

    basic = http.get("/v1/events", auth=(API_KEY, ""))
    assert basic.status_code == 200

    with pytest.raises(ValueError, match="sk_test_"):
        StripeFake("sk_live_real_key")


def test_unrecognized_url_is_a_stripe_shaped_404(http: httpx.Client) -> None:
    response = http.get("/v1/customers", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET")


# ------------------------------------------------------------------------------------ payments


def test_complete_session_creates_payment_intent_and_charge(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    session = create_session(client)

    event = fake.complete_session(session.id)

    assert event["id"].startswith("evt_")
    assert event["type"] == "checkout.session.completed"
    assert event["api_version"] == fake.api_version
    snapshot = event["data"]["object"]
    assert snapshot["status"] == "complete"
    assert snapshot["payment_status"] == "paid"
    assert snapshot["customer_details"]["email"] == "ada@example.com"
    intent = client.v1.payment_intents.retrieve(snapshot["payment_intent"])
    assert intent.status == "succeeded"
    assert intent.amount == intent.amount_received == 4900
    assert isinstance(intent.latest_charge, str)
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount, charge.amount_refunded, charge.refunded) == (4900, 0, False)
    assert charge.payment_intent == intent.id
    assert charge.disputed is False
    assert charge.metadata.to_dict() == {"order_id": "ord_42"}
    assert client.v1.checkout.sessions.retrieve(session.id).url is None

    with pytest.raises(StripeFakeError, match="complete"):
        fake.complete_session(session.id)


@pytest.mark.parametrize(
    ("succeeds", "event_type", "payment_status", "intent_status"),
    [
        (True, "checkout.session.async_payment_succeeded", "paid", "succeeded"),
        (False, "checkout.session.async_payment_failed", "unpaid", "requires_payment_method"),
    ],
)
def test_async_payment_settles_later(
    client: stripe.StripeClient,
    fake: StripeFake,
    succeeds: bool,
    event_type: str,
    payment_status: str,
    intent_status: str,
) -> None:
    session = create_session(client)
    completed = fake.complete_session(session.id, async_payment=True)
    assert completed["data"]["object"]["status"] == "complete"
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    intent_id = completed["data"]["object"]["payment_intent"]
    assert client.v1.payment_intents.retrieve(intent_id).status == "processing"

    settle = fake.succeed_async_payment if succeeds else fake.fail_async_payment
    event = settle(session.id)

    assert event["type"] == event_type
    assert event["data"]["object"]["payment_status"] == payment_status
    assert client.v1.payment_intents.retrieve(intent_id).status == intent_status
    with pytest.raises(StripeFakeError, match="no pending"):
        settle(session.id)


def test_expire_session_via_api_and_by_timeout(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    session = create_session(client)
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    assert [e["data"]["object"]["id"] for e in fake.events("checkout.session.expired")] == [
        session.id
    ]
    with pytest.raises(stripe.InvalidRequestError, match='status of "expired"'):
        client.v1.checkout.sessions.expire(session.id)
    with pytest.raises(StripeFakeError):
        fake.complete_session(session.id)

    later = create_session(client, expires_at=int(time.time()) + 3600)
    assert fake.expire_due_sessions(now=later.expires_at - 1) == []
    (event,) = fake.expire_due_sessions(now=later.expires_at)
    assert event["data"]["object"]["id"] == later.id


def test_full_and_partial_refunds_and_over_refund(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    charge = paid_charge(client, fake)
    assert isinstance(charge.payment_intent, str)

    partial = client.v1.refunds.create(
        params={"payment_intent": charge.payment_intent, "amount": 1000}
    )
    assert partial.id.startswith("re_")
    assert (partial.amount, partial.charge, partial.status) == (1000, charge.id, "succeeded")
    after_partial = client.v1.charges.retrieve(charge.id)
    assert (after_partial.amount_refunded, after_partial.refunded) == (1000, False)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 3901})
    assert too_much.value.param == "amount"
    assert "$39.00" in str(too_much.value.user_message)

    rest = client.v1.refunds.create(params={"charge": charge.id})
    assert rest.amount == 3900
    after_full = client.v1.charges.retrieve(charge.id)
    assert (after_full.amount_refunded, after_full.refunded) == (4900, True)
    assert client.v1.refunds.retrieve(rest.id).amount == 3900

    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"charge": charge.id})
    assert again.value.code == "charge_already_refunded"

    refunded = fake.events("charge.refunded")
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [1000, 4900]
    assert refunded[1]["data"]["previous_attributes"] == {
        "amount_refunded": 1000,
        "refunded": False,
    }


def test_refund_charge_control_method(client: stripe.StripeClient, fake: StripeFake) -> None:
    charge = paid_charge(client, fake)

    partial = fake.refund_charge(charge.id, 900)
    full = fake.refund_charge(charge.id)

    assert partial["type"] == full["type"] == "charge.refunded"
    assert partial["data"]["object"]["amount_refunded"] == 900
    assert full["data"]["object"]["refunded"] is True
    with pytest.raises(StripeFakeError) as error:
        fake.refund_charge(charge.id, 1)
    assert error.value.code == "charge_already_refunded"


@pytest.mark.parametrize("won", [True, False])
def test_dispute_opens_and_closes(client: stripe.StripeClient, fake: StripeFake, won: bool) -> None:
    charge = paid_charge(client, fake)

    created = fake.open_dispute(charge.id)
    dispute_id = created["data"]["object"]["id"]
    assert created["type"] == "charge.dispute.created"
    dispute = client.v1.disputes.retrieve(dispute_id)
    assert (dispute.status, dispute.charge, dispute.amount) == ("needs_response", charge.id, 4900)
    assert dispute.payment_intent == charge.payment_intent
    assert client.v1.charges.retrieve(charge.id).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as refund_error:
        client.v1.refunds.create(params={"charge": charge.id})
    assert refund_error.value.code == "charge_disputed"

    closed = fake.close_dispute(dispute_id, won=won)

    assert closed["type"] == "charge.dispute.closed"
    assert closed["data"]["object"]["status"] == ("won" if won else "lost")
    assert closed["data"]["previous_attributes"] == {"status": "needs_response"}
    assert client.v1.disputes.retrieve(dispute_id).status == ("won" if won else "lost")
    with pytest.raises(StripeFakeError, match="already closed"):
        fake.close_dispute(dispute_id, won=True)


def test_events_are_retrievable_through_the_api(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    charge = paid_charge(client, fake)
    refunded = fake.refund_charge(charge.id)

    event = client.v1.events.retrieve(refunded["id"])
    assert event.type == "charge.refunded"
    assert event.data.object["id"] == charge.id
    listed = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.type for e in listed.data] == ["checkout.session.completed"]


# ------------------------------------------------------------------------------------ webhooks


def test_signed_payload_passes_sdk_verification_and_tampering_fails(
    client: stripe.StripeClient, fake: StripeFake
) -> None:
    event = fake.complete_session(create_session(client).id)

    body, headers = fake.signed_payload(event, secret=WEBHOOK_SECRET)

    parsed = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], WEBHOOK_SECRET)
    assert parsed.id == event["id"]
    assert parsed.type == "checkout.session.completed"
    tampered = body.replace(b'"paid"', b'"unpaid"')
    assert tampered != body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, headers["Stripe-Signature"], WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")
    stale_body, stale_headers = fake.signed_payload(
        event, secret=WEBHOOK_SECRET, timestamp=int(time.time()) - 3600
    )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            stale_body, stale_headers["Stripe-Signature"], WEBHOOK_SECRET
        )
    assert sign_payload(b"{}", "whsec_x", 1) == sign_payload(b"{}", "whsec_x", 1)
    assert sign_payload(b"{}", "whsec_x", 1) != sign_payload(b"{ }", "whsec_x", 1)


def test_webhooks_are_delivered_to_a_local_receiver(
    client: stripe.StripeClient, fake: StripeFake, receiver: Receiver
) -> None:
    session = create_session(client)

    fake.complete_session(session.id)
    # Scenario controls deliver before returning.
    (completed,) = receiver.events()
    assert completed.type == "checkout.session.completed"
    assert completed.data.object["id"] == session.id
    assert receiver.requests[0][0]["Content-Type"].startswith("application/json")

    intent = client.v1.payment_intents.retrieve(completed.data.object["payment_intent"])
    client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 100})
    # API-caused events go through the background queue.
    assert fake.wait_for_deliveries(timeout=5)

    assert [e.type for e in receiver.events()] == [
        "checkout.session.completed",
        "charge.refunded",
    ]
    assert [d.ok for d in fake.deliveries] == [True, True]
    refund_request = receiver.events()[1].request
    assert refund_request is not None
    assert refund_request.idempotency_key is not None


def test_failed_deliveries_are_recorded_not_raised(
    client: stripe.StripeClient, fake: StripeFake, receiver: Receiver
) -> None:
    receiver.status = 500
    event = fake.complete_session(create_session(client).id)
    (failed,) = fake.deliveries
    assert (failed.ok, failed.status_code, failed.event_id) == (False, 500, event["id"])

    receiver.status = 204
    retried = fake.redeliver(event["id"])
    assert retried.ok
    assert len(receiver.requests) == 2

    closed = _refusing_port()
    fake.configure_webhook(f"http://127.0.0.1:{closed}/hook", WEBHOOK_SECRET)
    fake.refund_charge(_charge_of(client, event))
    unreachable = fake.deliveries[-1]
    assert unreachable.status_code is None
    assert unreachable.error


def _charge_of(client: stripe.StripeClient, event: dict[str, Any]) -> str:
    intent = client.v1.payment_intents.retrieve(event["data"]["object"]["payment_intent"])
    assert isinstance(intent.latest_charge, str)
    return intent.latest_charge


def _refusing_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------------------------ pay page


def test_pay_page_completes_session_and_redirects(
    client: stripe.StripeClient, fake: StripeFake, receiver: Receiver, http: httpx.Client
) -> None:
    seen_by_webhook: list[str] = []

    def app_handler(body: bytes) -> None:
        # A real app re-reads the session from Stripe inside its webhook handler: the fake
        # must serve that while the pay request that triggered the webhook is still open.
        event = stripe.Webhook.construct_event(
            body, receiver.requests[-1][0]["Stripe-Signature"], WEBHOOK_SECRET
        )
        session_id = event.data.object["id"]
        seen_by_webhook.append(str(client.v1.checkout.sessions.retrieve(session_id).status))

    receiver.on_request = app_handler
    session = create_session(client)
    path = f"/pay/{session.id}"

    page = http.get(path)
    assert page.status_code == 200
    assert "<h1>Pay $49.00 for Rust 101</h1>" in page.text
    assert f'<form method="post" action="{path}">' in page.text
    assert '<button type="submit">Pay $49.00</button>' in page.text
    assert f'href="{path}/cancel"' in page.text

    cancel = http.get(f"{path}/cancel")
    assert (cancel.status_code, cancel.headers["location"]) == (303, CANCEL_URL)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"

    paid = http.post(path)
    assert paid.status_code == 303
    assert paid.headers["location"] == SUCCESS_URL.replace("{CHECKOUT_SESSION_ID}", session.id)
    assert seen_by_webhook == ["complete"]
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"

    # A double submit lands on the success page again without paying twice.
    again = http.post(path)
    assert (again.status_code, again.headers["location"]) == (303, paid.headers["location"])
    assert len(fake.events("checkout.session.completed")) == 1
    assert "already paid" in http.get(path).text
    assert http.get("/pay/cs_test_nope").status_code == 404


def test_pay_page_escapes_product_names(client: stripe.StripeClient, http: httpx.Client) -> None:
    item = {
        "quantity": 2,
        "price_data": {
            "currency": "usd",
            "unit_amount": 1000,
            "product_data": {"name": "<script>alert(1)</script>"},
        },
    }
    session = create_session(client, line_items=[item])
    page = http.get(f"/pay/{session.id}").text
    assert "<script>alert" not in page
    assert "Pay $20.00 for &lt;script&gt;alert(1)&lt;/script&gt; &times; 2" in page


# ------------------------------------------------------------------------------------ control API


def test_control_endpoints_drive_scenarios_over_http(
    client: stripe.StripeClient, fake: StripeFake, http: httpx.Client
) -> None:
    session = create_session(client)
    receiver_url = "http://127.0.0.1:9/unused"
    assert http.post("/_fake/webhook", json={"url": receiver_url, "secret": "whsec_x"}).is_success
    assert fake.webhook_url == receiver_url
    assert http.delete("/_fake/webhook").json()["url"] is None

    completed = http.post(f"/_fake/checkout/sessions/{session.id}/complete").json()
    assert completed["type"] == "checkout.session.completed"
    charge_id = _charge_of(client, completed)

    refunded = http.post(f"/_fake/charges/{charge_id}/refund", data={"amount": "400"}).json()
    assert refunded["data"]["object"]["amount_refunded"] == 400

    disputed = http.post(f"/_fake/charges/{charge_id}/dispute").json()
    assert disputed["data"]["object"]["amount"] == 4500
    dispute_id = disputed["data"]["object"]["id"]
    closed = http.post(f"/_fake/disputes/{dispute_id}/close", json={"won": False}).json()
    assert closed["data"]["object"]["status"] == "lost"

    missing_won = http.post(f"/_fake/disputes/{dispute_id}/close")
    assert missing_won.status_code == 400
    assert missing_won.json()["error"]["param"] == "won"
    assert http.post("/_fake/charges/ch_nope/refund").status_code == 404
    assert http.get("/_fake/nothing-here").status_code == 404

    types = [e["type"] for e in http.get("/_fake/events").json()["data"]]
    assert types == [
        "checkout.session.completed",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
    ]
    assert http.post("/_fake/reset").is_success
    assert fake.events() == []
