"""A small Stripe-compatible HTTP server for tests and the offline demo stack.

The real ``stripe`` SDK talks to it unchanged; only the API base differs::

    with StripeFake(api_keys="sk_test_fake") as fake:
        client = stripe.StripeClient("sk_test_fake", base_addresses={"api": fake.api_base})
        session = client.v1.checkout.sessions.create(params={...})
        event = fake.complete_session(session.id)  # the customer paid

It covers the card rail of Tuition: Checkout Sessions (mode=payment with ``price_data``),
PaymentIntents, Charges, Refunds, Disputes and Events, Stripe's form encoding, errors,
idempotency keys and signed webhooks, plus a hosted "pay" page at ``/pay/<session id>``.

State lives in memory behind one lock. Scenario controls (``complete_session``,
``refund_charge``, ``open_dispute``...) exist as Python methods and under ``/_fake/``.
Webhooks caused by scenario controls and by the pay page are delivered synchronously, so a
test sees their effect as soon as the call returns; webhooks caused by API calls (a refund,
an expiry) go through a background queue, like Stripe, so an app that calls the API while
holding a database lock cannot deadlock against its own webhook handler. Use
``wait_for_deliveries()`` to wait for that queue.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import copy
import html
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Self
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from backend.devtools.stripe_common import (
    _NO_REQUEST,
    JSON,
    StripeFakeError,
    _as_bool,
    _as_currency,
    _as_dict,
    _as_email,
    _as_int,
    _as_list,
    _as_metadata,
    _as_str,
    _as_url,
    _check_unknown,
    _expand_paths,
    _missing,
    _new_id,
    _no_such,
    _page,
    _RequestContext,
    _require,
    format_amount,
    parse_params,
    sign_payload,
)
from backend.devtools.stripe_connect import ConnectMixin

try:  # pragma: no branch - the SDK is a dependency of the project
    from stripe import api_version as _sdk_api_version
except ImportError:  # pragma: no cover
    _sdk_api_version = "2026-10-28.endive"

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_VERSION",
    "StripeFake",
    "StripeFakeError",
    "WebhookDelivery",
    "create_app",
    "format_amount",
    "main",
    "parse_params",
    "serve",
    "sign_payload",
]

logger = logging.getLogger(__name__)


DEFAULT_API_KEY = "sk_test_tuition_fake"
# Events carry the version the installed SDK pins, so its own parsing sees what it expects.
DEFAULT_API_VERSION: str = _sdk_api_version
DEFAULT_PORT = 12111

# Stripe's cap on amounts (8 digits of minor units).
_MAX_AMOUNT = 99_999_999
_MAX_QUANTITY = 999_999
_SESSION_MIN_LIFETIME = 30 * 60
_SESSION_MAX_LIFETIME = 24 * 60 * 60
# Clients compute expires_at from their own clock just before the request: allow drift.
_EXPIRES_AT_SLACK = 60
_DISPUTE_RESPONSE_WINDOW = 7 * 24 * 60 * 60


_KIND_BY_PREFIX = {
    "cs_": "checkout.session",
    "pi_": "payment_intent",
    "ch_": "charge",
    "re_": "refund",
    "dp_": "dispute",
    "evt_": "event",
    "acct_": "account",
    "po_": "payout",
    "tr_": "transfer",
}
_KINDS = tuple(_KIND_BY_PREFIX.values())
_EXPANDABLE = {
    "checkout.session": frozenset({"payment_intent", "line_items"}),
    "payment_intent": frozenset({"latest_charge"}),
    "charge": frozenset({"payment_intent"}),
    "refund": frozenset({"charge", "payment_intent"}),
    "dispute": frozenset({"charge", "payment_intent"}),
    "event": frozenset(),
    "account": frozenset(),
    "payout": frozenset(),
    "transfer": frozenset(),
}

# Params the fake understands or knowingly ignores; anything else is rejected like Stripe does,
# which catches typos in the app that a permissive fake would hide.
_SESSION_PARAMS = frozenset(
    {
        "allow_promotion_codes",
        "billing_address_collection",
        "cancel_url",
        "client_reference_id",
        "customer_creation",
        "customer_email",
        "expand",
        "expires_at",
        "line_items",
        "locale",
        "metadata",
        "mode",
        "payment_intent_data",
        "payment_method_types",
        "submit_type",
        "success_url",
        "ui_mode",
    }
)
_PAYMENT_INTENT_DATA_PARAMS = frozenset(
    {
        "application_fee_amount",
        "description",
        "metadata",
        "receipt_email",
        "statement_descriptor_suffix",
        "transfer_data",
    }
)
_LINE_ITEM_PARAMS = frozenset({"price", "price_data", "quantity"})
_PRICE_DATA_PARAMS = frozenset(
    {"currency", "product", "product_data", "tax_behavior", "unit_amount", "unit_amount_decimal"}
)
_PRODUCT_DATA_PARAMS = frozenset({"description", "images", "metadata", "name", "tax_code"})
_REFUND_PARAMS = frozenset(
    {
        "amount",
        "charge",
        "expand",
        "metadata",
        "payment_intent",
        "reason",
        "refund_application_fee",
        "reverse_transfer",
    }
)
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_DISPUTE_REASONS = frozenset(
    {
        "credit_not_processed",
        "duplicate",
        "fraudulent",
        "general",
        "product_not_received",
        "product_unacceptable",
        "subscription_canceled",
        "unrecognized",
    }
)
_OPEN_DISPUTE_STATUSES = frozenset({"needs_response", "under_review"})


def _redact_key(key: str) -> str:
    if len(key) <= 12:
        return "*" * len(key)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an event to the configured webhook endpoint."""

    event_id: str
    event_type: str
    url: str
    status_code: int | None
    error: str | None
    attempted_at: float

    @property
    def ok(self) -> bool:
        """Whether the endpoint answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_dict(self) -> JSON:
        """Return a JSON-ready dict (with ``ok``)."""
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class _Endpoint:
    url: str
    secret: str
    client: httpx.Client | None


@dataclass(frozen=True)
class _IdempotentResult:
    method: str
    path: str
    params: JSON
    body: JSON


_ApiHandler = Callable[..., tuple[JSON, list[JSON]]]


# --------------------------------------------------------------------------------------------
# The fake


class StripeFake(ConnectMixin):
    """An in-memory Stripe served over HTTP on 127.0.0.1 from a background thread.

    Args:
        api_keys: Secret key(s) accepted in ``Authorization: Bearer``; each must be ``sk_test_``.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        public_url: Base URL browsers use for the pay page, if not ``api_base``
            (e.g. behind a proxy or when binding 0.0.0.0 in a container).
        api_version: ``api_version`` stamped on events.
        clock: Source of "now" (seconds since the epoch), for timestamps and expiry.
        webhook_timeout: Seconds to wait for the webhook endpoint to answer.
    """

    def __init__(
        self,
        api_keys: str | Iterable[str] = DEFAULT_API_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        clock: Callable[[], float] = time.time,
        webhook_timeout: float = 10.0,
    ) -> None:
        keys = (api_keys,) if isinstance(api_keys, str) else tuple(api_keys)
        if not keys or not all(key.startswith("sk_test_") for key in keys):
            # A live key has no business here; refusing it keeps real secrets out of demos.
            raise ValueError("StripeFake only accepts test secret keys (sk_test_...)")
        self.api_keys = frozenset(keys)
        self.host = host
        self.api_version = api_version
        self.webhook_timeout = webhook_timeout
        self._requested_port = port
        self._public_url = public_url.rstrip("/") if public_url else None
        self._clock = clock
        # One re-entrant lock guards all state; handlers are tiny, so contention is moot.
        self._lock = threading.RLock()
        self._objects: dict[str, dict[str, JSON]] = {kind: {} for kind in _KINDS}
        self._line_items: dict[str, list[JSON]] = {}
        # payment_intent_data given at session creation, applied when the customer pays.
        self._intent_data: dict[str, JSON] = {}
        # Connect: account link tokens, and refunds that also refunded the application fee.
        self._account_links: dict[str, JSON] = {}
        self._fee_refunds: set[str] = set()
        # Connected accounts' balances: account -> "available"/"pending" -> currency -> amount.
        self._balances: dict[str, dict[str, dict[str, int]]] = {}
        self._payout_accounts: dict[str, str] = {}
        self._idempotency: dict[tuple[str, str], _IdempotentResult] = {}
        self._deliveries: list[WebhookDelivery] = []
        self._webhook: _Endpoint | None = None
        self._http: httpx.Client | None = None
        # Background delivery of API-caused events.
        self._queue_cv = threading.Condition()
        self._queue: collections.deque[tuple[_Endpoint, JSON]] = collections.deque()
        self._pending = 0
        self._worker: threading.Thread | None = None
        self._worker_stop = False
        # Server.
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._routes: list[tuple[str, re.Pattern[str], _ApiHandler]] = [
            ("POST", re.compile(r"/v1/checkout/sessions"), self._api_create_session),
            ("GET", re.compile(r"/v1/checkout/sessions"), self._api_list_sessions),
            ("GET", re.compile(r"/v1/checkout/sessions/([^/]+)"), self._api_retrieve_session),
            (
                "GET",
                re.compile(r"/v1/checkout/sessions/([^/]+)/line_items"),
                self._api_session_line_items,
            ),
            ("POST", re.compile(r"/v1/checkout/sessions/([^/]+)/expire"), self._api_expire),
            (
                "GET",
                re.compile(r"/v1/payment_intents/([^/]+)"),
                self._api_retriever("payment_intent"),
            ),
            ("GET", re.compile(r"/v1/charges/([^/]+)"), self._api_retriever("charge")),
            ("POST", re.compile(r"/v1/refunds"), self._api_create_refund),
            ("GET", re.compile(r"/v1/refunds/([^/]+)"), self._api_retriever("refund")),
            ("GET", re.compile(r"/v1/disputes/([^/]+)"), self._api_retriever("dispute")),
            ("GET", re.compile(r"/v1/events"), self._api_list_events),
            ("GET", re.compile(r"/v1/events/([^/]+)"), self._api_retriever("event")),
            ("POST", re.compile(r"/v1/accounts"), self._api_create_account),
            ("GET", re.compile(r"/v1/accounts/([^/]+)"), self._api_retriever("account")),
            ("POST", re.compile(r"/v1/account_links"), self._api_create_account_link),
            ("GET", re.compile(r"/v1/balance"), self._api_balance),
            ("GET", re.compile(r"/v1/payouts"), self._api_list_payouts),
            ("GET", re.compile(r"/v1/payouts/([^/]+)"), self._api_retriever("payout")),
            ("GET", re.compile(r"/v1/transfers/([^/]+)"), self._api_retriever("transfer")),
            (
                "POST",
                re.compile(r"/v1/transfers/([^/]+)/reversals"),
                self._api_reverse_transfer,
            ),
        ]
        self.app = create_app(self)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Serve the API in a background thread; returns once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("StripeFake is already running")
        sock = self._bind()
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the host process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="stripe-fake", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("StripeFake server failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop the server and the delivery worker; state is kept."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self._port = None
        self._stop_worker()
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def serve_forever(self) -> None:
        """Serve in the current thread until interrupted (Ctrl-C / SIGTERM)."""
        sock = self._bind()
        config = uvicorn.Config(self.app, log_level="info", lifespan="off")
        logger.info("Stripe fake listening on %s", self.api_base)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            sock.close()
            self._port = None
            self._stop_worker()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._port = sock.getsockname()[1]
        return sock

    @property
    def port(self) -> int:
        """The bound port (only while serving)."""
        if self._port is None:
            raise RuntimeError("StripeFake is not running; call start()")
        return self._port

    @property
    def api_base(self) -> str:
        """Base URL for the SDK, e.g. ``http://127.0.0.1:54321``."""
        # A wildcard bind is reachable through loopback; the wildcard itself is not an address.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        """Base URL of the hosted pay page as browsers see it."""
        if self._public_url:
            return self._public_url
        # Without a server (ASGI TestClient use) Starlette's test host is the natural base.
        return self.api_base if self._port is not None else "http://testserver"

    # ---------------------------------------------------------------- configuration & inspection

    def configure_webhook(
        self, url: str | None, secret: str | None = None, *, client: httpx.Client | None = None
    ) -> None:
        """Send every new event to ``url``, signed with ``secret``; ``url=None`` turns it off.

        Args:
            url: Endpoint to POST events to.
            secret: Endpoint signing secret (``whsec_...``).
            client: HTTP client to deliver with, e.g. a Starlette ``TestClient`` for an app
                that isn't listening on a socket. Defaults to a plain httpx client.
        """
        if url is None:
            endpoint = None
        elif not secret:
            raise ValueError("a webhook endpoint needs a signing secret")
        else:
            endpoint = _Endpoint(url=url, secret=secret, client=client)
        with self._lock:
            self._webhook = endpoint

    @property
    def webhook_url(self) -> str | None:
        """The configured webhook endpoint, if any."""
        endpoint = self._webhook
        return endpoint.url if endpoint else None

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        """Every webhook delivery attempt so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def events(self, type: str | None = None) -> list[JSON]:
        """Return recorded events, oldest first, optionally of one ``type``."""
        with self._lock:
            return [
                copy.deepcopy(event)
                for event in self._objects["event"].values()
                if type is None or event["type"] == type
            ]

    def get_object(self, object_id: str) -> JSON:
        """Return a snapshot of any object by id (session, payment intent, charge, ...).

        Raises:
            StripeFakeError: No such object (404, ``resource_missing``).
        """
        with self._lock:
            return copy.deepcopy(self._lookup(object_id))

    def reset(self) -> None:
        """Forget all objects, events, idempotency keys and deliveries (keeps the webhook)."""
        self.wait_for_deliveries()
        with self._lock:
            for store in self._objects.values():
                store.clear()
            self._line_items.clear()
            self._intent_data.clear()
            self._idempotency.clear()
            self._deliveries.clear()
            self._account_links.clear()
            self._fee_refunds.clear()
            self._balances.clear()
            self._payout_accounts.clear()

    # ---------------------------------------------------------------- scenario controls

    def complete_session(
        self, session_id: str, *, async_payment: bool = False, email: str | None = None
    ) -> JSON:
        """The customer paid: create a PaymentIntent and Charge, complete the session.

        Args:
            session_id: An open Checkout Session.
            async_payment: Pay with a method that settles later (bank debit): the session
                completes with ``payment_status: "unpaid"`` until ``succeed_async_payment`` or
                ``fail_async_payment``.
            email: The customer's email; defaults to the session's ``customer_email``.

        Returns:
            The ``checkout.session.completed`` event.
        """
        with self._lock:
            event = self._complete(session_id, async_payment, email, _NO_REQUEST)
        return self._publish_now(event)

    def succeed_async_payment(self, session_id: str) -> JSON:
        """Settle a pending async payment; returns ``checkout.session.async_payment_succeeded``."""
        with self._lock:
            event = self._settle(session_id, succeeded=True)
        return self._publish_now(event)

    def fail_async_payment(self, session_id: str) -> JSON:
        """Fail a pending async payment; returns ``checkout.session.async_payment_failed``."""
        with self._lock:
            event = self._settle(session_id, succeeded=False)
        return self._publish_now(event)

    def expire_session(self, session_id: str) -> JSON:
        """Expire an open session (as if it timed out); returns ``checkout.session.expired``."""
        with self._lock:
            event = self._expire(session_id, _NO_REQUEST)
        return self._publish_now(event)

    def expire_due_sessions(self, now: int | None = None) -> list[JSON]:
        """Expire every open session whose ``expires_at`` has passed; returns the events."""
        with self._lock:
            cutoff = self._now() if now is None else now
            due = [
                session["id"]
                for session in self._objects["checkout.session"].values()
                if session["status"] == "open" and session["expires_at"] <= cutoff
            ]
            events = [self._expire(session_id, _NO_REQUEST) for session_id in due]
        return [self._publish_now(event) for event in events]

    def refund_charge(self, charge_id: str, amount: int | None = None) -> JSON:
        """Refund a charge, fully or by ``amount`` minor units; returns ``charge.refunded``."""
        with self._lock:
            charge = self._get("charge", charge_id)
            if amount is not None:
                amount = _as_int(amount, "amount", minimum=1)
            _, event = self._refund(charge, amount, None, {}, _NO_REQUEST)
        return self._publish_now(event)

    def open_dispute(
        self, charge_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> JSON:
        """The cardholder disputes a charge; returns ``charge.dispute.created``."""
        with self._lock:
            event = self._open_dispute(charge_id, amount, reason)
        return self._publish_now(event)

    def close_dispute(self, dispute_id: str, won: bool) -> JSON:
        """Close a dispute as won or lost; returns ``charge.dispute.closed``."""
        with self._lock:
            event = self._close_dispute(dispute_id, won)
        return self._publish_now(event)

    # ---------------------------------------------------------------- webhooks

    def signed_payload(
        self,
        event: Mapping[str, Any] | str,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Return the exact body and headers Stripe would POST for ``event``.

        Args:
            event: An event dict or event id.
            secret: Signing secret; defaults to the configured webhook's.
            timestamp: Signature time; defaults to now (real time: verifiers check tolerance).
        """
        if isinstance(event, str):
            with self._lock:
                event = copy.deepcopy(self._get("event", event))
        if secret is None:
            endpoint = self._webhook
            if endpoint is None:
                raise ValueError("no webhook configured; pass secret=")
            secret = endpoint.secret
        # Stripe sends pretty-printed JSON; signatures cover these exact bytes.
        body = json.dumps(event, indent=2).encode()
        signed_at = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign_payload(body, secret, signed_at),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        return body, headers

    def redeliver(self, event_id: str) -> WebhookDelivery:
        """POST an existing event to the webhook endpoint again (like "Resend" in Stripe)."""
        with self._lock:
            event = copy.deepcopy(self._get("event", event_id))
            endpoint = self._webhook
        if endpoint is None:
            raise ValueError("no webhook configured")
        return self._post_event(endpoint, event)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Wait until queued (API-caused) webhooks are delivered; False on timeout."""
        with self._queue_cv:
            return self._queue_cv.wait_for(lambda: self._pending == 0, timeout)

    def _publish_now(self, event: JSON) -> JSON:
        endpoint = self._webhook
        if endpoint is not None:
            self._post_event(endpoint, event)
        return copy.deepcopy(event)

    def _enqueue(self, events: list[JSON]) -> None:
        endpoint = self._webhook
        if endpoint is None or not events:
            return
        with self._queue_cv:
            self._queue.extend((endpoint, event) for event in events)
            self._pending += len(events)
            if self._worker is None or not self._worker.is_alive():
                self._worker_stop = False
                self._worker = threading.Thread(
                    target=self._deliver_queued, name="stripe-fake-webhooks", daemon=True
                )
                self._worker.start()
            self._queue_cv.notify_all()

    def _deliver_queued(self) -> None:
        while True:
            with self._queue_cv:
                self._queue_cv.wait_for(lambda: bool(self._queue) or self._worker_stop)
                if not self._queue:
                    return
                endpoint, event = self._queue.popleft()
            try:
                self._post_event(endpoint, event)
            finally:
                with self._queue_cv:
                    self._pending -= 1
                    self._queue_cv.notify_all()

    def _stop_worker(self) -> None:
        self.wait_for_deliveries(timeout=self.webhook_timeout)
        with self._queue_cv:
            self._worker_stop = True
            self._queue_cv.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout=self.webhook_timeout)
        self._worker = None

    def _http_client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                # trust_env=False: a proxy from the environment must not swallow local webhooks.
                self._http = httpx.Client(
                    timeout=self.webhook_timeout, follow_redirects=False, trust_env=False
                )
            return self._http

    def _post_event(self, endpoint: _Endpoint, event: JSON) -> WebhookDelivery:
        body, headers = self.signed_payload(event, secret=endpoint.secret)
        status_code: int | None = None
        error: str | None = None
        try:
            client = endpoint.client or self._http_client()
            response = client.post(endpoint.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"endpoint answered HTTP {status_code}"
        # Delivery failures are data for the test, never an exception for the caller; a
        # TestClient re-raises the app's own exceptions, hence the broad catch.
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery = WebhookDelivery(
            event_id=event["id"],
            event_type=event["type"],
            url=endpoint.url,
            status_code=status_code,
            error=error,
            attempted_at=time.time(),
        )
        with self._lock:
            self._deliveries.append(delivery)
        if error:
            logger.warning("webhook %s (%s) to %s failed: %s", *_delivery_log_args(delivery))
        return delivery

    # ---------------------------------------------------------------- state (call with lock held)

    def _now(self) -> int:
        return int(self._clock())

    def _get(self, kind: str, object_id: str, param: str = "id") -> JSON:
        found = self._objects[kind].get(object_id)
        if found is None:
            raise _no_such(kind, object_id, param)
        return found

    def _lookup(self, object_id: str) -> JSON:
        for prefix, kind in _KIND_BY_PREFIX.items():
            if object_id.startswith(prefix):
                return self._get(kind, object_id)
        raise _no_such("object", object_id)

    def _emit(
        self,
        event_type: str,
        obj: JSON,
        ctx: _RequestContext,
        previous: JSON | None = None,
        account: str | None = None,
    ) -> JSON:
        data: JSON = {"object": copy.deepcopy(obj)}
        if previous:
            data["previous_attributes"] = previous
        event: JSON = {
            "id": _new_id("evt_"),
            "object": "event",
            "api_version": self.api_version,
            "created": self._now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 1 if self._webhook is not None else 0,
            "request": {"id": ctx.request_id, "idempotency_key": ctx.idempotency_key},
            "type": event_type,
        }
        if account is not None:  # an event of a connected account (Connect webhooks)
            event["account"] = account
        self._objects["event"][event["id"]] = event
        return event

    def _render(self, obj: JSON, expand: list[str]) -> JSON:
        rendered = copy.deepcopy(obj)
        for path in expand:
            self._expand(rendered, path.split("."), path)
        return rendered

    def _expand(self, node: JSON, parts: list[str], full_path: str) -> None:
        field, rest = parts[0], parts[1:]
        if field not in _EXPANDABLE.get(node.get("object", ""), frozenset()):
            raise StripeFakeError(
                f"This property cannot be expanded ({full_path}).", param="expand"
            )
        if field == "line_items":
            node["line_items"] = self._line_items_list(node["id"])
            return
        value = node.get(field)
        if isinstance(value, str):
            value = copy.deepcopy(self._lookup(value))
            node[field] = value
        if rest and isinstance(value, dict):
            self._expand(value, rest, full_path)

    def _line_items_list(self, session_id: str) -> JSON:
        return {
            "object": "list",
            "data": copy.deepcopy(self._line_items.get(session_id, [])),
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }

    def _list(self, items: list[JSON], params: Mapping[str, Any], url: str) -> JSON:
        limit = _as_int(params.get("limit", 10), "limit", minimum=1, maximum=100)
        starting_after = params.get("starting_after")
        if starting_after:
            ids = [item["id"] for item in items]
            if starting_after not in ids:
                raise _no_such("object", str(starting_after), "starting_after")
            items = items[ids.index(starting_after) + 1 :]
        return {
            "object": "list",
            "data": copy.deepcopy(items[:limit]),
            "has_more": len(items) > limit,
            "url": url,
        }

    def _create_session(self, params: JSON) -> JSON:
        _check_unknown(params, _SESSION_PARAMS)
        mode = _require(params, "mode", "mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeFakeError(
                "Invalid mode: must be one of payment, setup, or subscription", param="mode"
            )
        if mode != "payment":
            raise StripeFakeError(
                f"stripe_fake supports mode=payment only, not {mode}", param="mode"
            )
        if params.get("ui_mode", "hosted") != "hosted":
            raise StripeFakeError("stripe_fake supports ui_mode=hosted only", param="ui_mode")
        success_url = _as_url(_require(params, "success_url", "success_url"), "success_url")
        cancel_url = params.get("cancel_url") or None
        if cancel_url is not None:
            cancel_url = _as_url(cancel_url, "cancel_url")
        raw_items = _as_list(_require(params, "line_items", "line_items"), "line_items")
        if not raw_items:
            raise _missing("line_items")
        now = self._now()
        items = [self._line_item(raw, f"line_items[{i}]", now) for i, raw in enumerate(raw_items)]
        if len({item["currency"] for item in items}) > 1:
            raise StripeFakeError(
                "Checkout Sessions do not support multiple currencies; all line items must use "
                "the same currency.",
                param="line_items",
            )
        total = sum(item["amount_total"] for item in items)
        if total > _MAX_AMOUNT:
            raise StripeFakeError(
                f"The Checkout Session's total amount must be at most {_MAX_AMOUNT}.",
                code="amount_too_large",
                param="line_items",
            )
        metadata = _as_metadata(params.get("metadata"), "metadata")
        intent_data = _as_dict(params.get("payment_intent_data", {}), "payment_intent_data")
        _check_unknown(intent_data, _PAYMENT_INTENT_DATA_PARAMS, "payment_intent_data")
        intent_metadata = _as_metadata(intent_data.get("metadata"), "payment_intent_data[metadata]")
        customer_email = params.get("customer_email") or None
        if customer_email is not None:
            customer_email = _as_email(customer_email, "customer_email")
        client_reference_id = params.get("client_reference_id") or None
        if client_reference_id is not None:
            client_reference_id = _as_str(
                client_reference_id, "client_reference_id", max_length=200
            )
        expires_at = now + _SESSION_MAX_LIFETIME
        if params.get("expires_at") not in (None, ""):
            expires_at = _as_int(params["expires_at"], "expires_at")
            if expires_at < now + _SESSION_MIN_LIFETIME - _EXPIRES_AT_SLACK:
                raise StripeFakeError(
                    "The `expires_at` timestamp must be at least 30 minutes from Checkout "
                    "Session creation.",
                    param="expires_at",
                )
            if expires_at > now + _SESSION_MAX_LIFETIME + _EXPIRES_AT_SLACK:
                raise StripeFakeError(
                    "The `expires_at` timestamp must be less than 24 hours from Checkout "
                    "Session creation.",
                    param="expires_at",
                )
        method_types = [
            _as_str(value, f"payment_method_types[{i}]")
            for i, value in enumerate(
                _as_list(params.get("payment_method_types", ["card"]), "payment_method_types")
            )
        ]
        expand = _expand_paths(params)
        session_id = _new_id("cs_test_", 58)
        session: JSON = {
            "id": session_id,
            "object": "checkout.session",
            "allow_promotion_codes": _as_bool(
                params.get("allow_promotion_codes", False), "allow_promotion_codes"
            )
            or None,
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "created": now,
            "currency": items[0]["currency"],
            "customer": None,
            "customer_details": None,
            "customer_email": customer_email,
            "expires_at": expires_at,
            "livemode": False,
            "locale": params.get("locale") or None,
            "metadata": metadata,
            "mode": "payment",
            "payment_intent": None,
            "payment_method_types": method_types,
            "payment_status": "unpaid",
            "status": "open",
            "submit_type": params.get("submit_type") or None,
            "success_url": success_url,
            "ui_mode": "hosted",
            "url": f"{self.public_url}/pay/{session_id}",
        }
        # What the session promises the PaymentIntent will carry once the customer pays.
        session_private = {
            "destination": self._destination_data(intent_data, total),
            "metadata": intent_metadata,
            "description": intent_data.get("description") or None,
            "receipt_email": intent_data.get("receipt_email") or None,
        }
        self._objects["checkout.session"][session_id] = session
        self._line_items[session_id] = items
        self._intent_data[session_id] = session_private
        return self._render(session, expand)

    def _line_item(self, raw: Any, path: str, now: int) -> JSON:
        item = _as_dict(raw, path)
        _check_unknown(item, _LINE_ITEM_PARAMS, path)
        if "price" in item:
            raise _no_such("price", str(item["price"]), f"{path}[price]")
        price_path = f"{path}[price_data]"
        price_data = _as_dict(_require(item, "price_data", price_path), price_path)
        _check_unknown(price_data, _PRICE_DATA_PARAMS, price_path)
        if "product" in price_data:
            raise _no_such("product", str(price_data["product"]), f"{price_path}[product]")
        if "unit_amount_decimal" in price_data:
            raise StripeFakeError(
                "stripe_fake takes integer unit_amount in minor units, not unit_amount_decimal",
                param=f"{price_path}[unit_amount_decimal]",
            )
        currency = _as_currency(
            _require(price_data, "currency", f"{price_path}[currency]"), f"{price_path}[currency]"
        )
        unit_amount = _as_int(
            _require(price_data, "unit_amount", f"{price_path}[unit_amount]"),
            f"{price_path}[unit_amount]",
            maximum=_MAX_AMOUNT,
        )
        product_path = f"{price_path}[product_data]"
        product_data = _as_dict(_require(price_data, "product_data", product_path), product_path)
        _check_unknown(product_data, _PRODUCT_DATA_PARAMS, product_path)
        name = _as_str(
            _require(product_data, "name", f"{product_path}[name]"),
            f"{product_path}[name]",
            max_length=250,
        )
        product_metadata = _as_metadata(product_data.get("metadata"), f"{product_path}[metadata]")
        quantity = _as_int(
            _require(item, "quantity", f"{path}[quantity]"),
            f"{path}[quantity]",
            minimum=1,
            maximum=_MAX_QUANTITY,
        )
        amount = unit_amount * quantity
        return {
            "id": _new_id("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": amount,
            "amount_tax": 0,
            "amount_total": amount,
            "currency": currency,
            "description": name,
            "price": {
                "id": _new_id("price_"),
                "object": "price",
                "active": False,
                "created": now,
                "currency": currency,
                "livemode": False,
                "metadata": {},
                "product": {
                    "id": _new_id("prod_"),
                    "object": "product",
                    "name": name,
                    "description": product_data.get("description") or None,
                    "metadata": product_metadata,
                },
                "type": "one_time",
                "unit_amount": unit_amount,
            },
            "quantity": quantity,
        }

    def _complete(
        self, session_id: str, async_payment: bool, email: str | None, ctx: _RequestContext
    ) -> JSON:
        session = self._get("checkout.session", session_id)
        if session["status"] != "open":
            raise StripeFakeError(
                f"Checkout Session {session_id} is {session['status']}; only open sessions can "
                "be paid.",
                param="session",
            )
        now = self._now()
        intent_data = self._intent_data.get(session_id, {})
        payer_email = email or session["customer_email"] or "customer@example.com"
        amount = session["amount_total"]
        intent_id, charge_id = _new_id("pi_"), _new_id("ch_")
        payment_method = _new_id("pm_")
        status = "processing" if async_payment else "succeeded"
        intent: JSON = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0 if async_payment else amount,
            "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_{_new_id('', 24)}",
            "created": now,
            "currency": session["currency"],
            "customer": None,
            "description": intent_data.get("description"),
            "last_payment_error": None,
            "latest_charge": charge_id,
            "livemode": False,
            "metadata": dict(intent_data.get("metadata", {})),
            "payment_method": payment_method,
            "payment_method_types": list(session["payment_method_types"]),
            "receipt_email": intent_data.get("receipt_email"),
            "status": status,
        }
        charge: JSON = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": 0 if async_payment else amount,
            "amount_refunded": 0,
            "balance_transaction": _new_id("txn_"),
            "billing_details": {"address": None, "email": payer_email, "name": None, "phone": None},
            "captured": not async_payment,
            "created": now,
            "currency": session["currency"],
            "customer": None,
            "description": intent["description"],
            "disputed": False,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            # Stripe copies the PaymentIntent's metadata onto the charges it creates.
            "metadata": dict(intent["metadata"]),
            "paid": not async_payment,
            "payment_intent": intent_id,
            "payment_method": payment_method,
            "receipt_email": intent["receipt_email"],
            "refunded": False,
            "status": "pending" if async_payment else "succeeded",
        }
        self._attach_destination(intent, charge, intent_data.get("destination") or {})
        self._objects["payment_intent"][intent_id] = intent
        self._objects["charge"][charge_id] = charge
        session.update(
            status="complete",
            payment_status="unpaid" if async_payment else "paid",
            payment_intent=intent_id,
            url=None,  # Stripe only exposes the URL while the session can be paid
            customer_details={
                "address": None,
                "email": payer_email,
                "name": None,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
        )
        return self._emit("checkout.session.completed", session, ctx)

    def _settle(self, session_id: str, *, succeeded: bool) -> JSON:
        session = self._get("checkout.session", session_id)
        intent_id = session["payment_intent"]
        intent = self._objects["payment_intent"].get(intent_id) if intent_id else None
        if intent is None or intent["status"] != "processing":
            raise StripeFakeError(
                f"Checkout Session {session_id} has no pending asynchronous payment.",
                param="session",
            )
        charge = self._get("charge", intent["latest_charge"])
        if succeeded:
            intent.update(status="succeeded", amount_received=intent["amount"])
            charge.update(
                status="succeeded", paid=True, captured=True, amount_captured=charge["amount"]
            )
            self._credit_destination(charge)
            session["payment_status"] = "paid"
            event_type = "checkout.session.async_payment_succeeded"
        else:
            failure = {
                "code": "insufficient_funds",
                "message": "The customer's account has insufficient funds to cover this payment.",
                "type": "card_error",
            }
            intent.update(status="requires_payment_method", last_payment_error=failure)
            charge.update(
                status="failed",
                failure_code=failure["code"],
                failure_message=failure["message"],
            )
            event_type = "checkout.session.async_payment_failed"
        return self._emit(event_type, session, _NO_REQUEST)

    def _expire(self, session_id: str, ctx: _RequestContext) -> JSON:
        session = self._get("checkout.session", session_id)
        if session["status"] != "open":
            raise StripeFakeError(
                'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f'Session has a status of "{session["status"]}".',
                param="session",
            )
        session.update(status="expired", url=None)
        return self._emit("checkout.session.expired", session, ctx)

    def _dispute_for(self, charge_id: str) -> JSON | None:
        for dispute in self._objects["dispute"].values():
            if dispute["charge"] == charge_id:
                return dispute
        return None

    def _refund(
        self,
        charge: JSON,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
        ctx: _RequestContext,
    ) -> tuple[JSON, JSON]:
        charge_id = charge["id"]
        if charge["status"] != "succeeded":
            raise StripeFakeError(
                f"Charge {charge_id} has status {charge['status']}; only succeeded charges can be "
                "refunded.",
                param="charge",
            )
        dispute = self._dispute_for(charge_id)
        if dispute is not None and dispute["status"] != "won":
            raise StripeFakeError(
                f"Charge {charge_id} has been charged back; cannot issue a refund.",
                code="charge_disputed",
                param="charge",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeFakeError(
                f"Charge {charge_id} has already been refunded.",
                code="charge_already_refunded",
                param="charge",
            )
        if amount is None:
            amount = remaining
        elif amount > remaining:
            raise StripeFakeError(
                f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({format_amount(remaining, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        refund: JSON = {
            "id": _new_id("re_"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": _new_id("txn_"),
            "charge": charge_id,
            "created": self._now(),
            "currency": charge["currency"],
            "metadata": metadata,
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": "succeeded",
        }
        self._objects["refund"][refund["id"]] = refund
        previous: JSON = {"amount_refunded": charge["amount_refunded"]}
        charge["amount_refunded"] += amount
        fully_refunded = charge["amount_refunded"] == charge["amount"]
        if fully_refunded != charge["refunded"]:
            previous["refunded"] = charge["refunded"]
            charge["refunded"] = fully_refunded
        event = self._emit("charge.refunded", charge, ctx, previous)
        return refund, event

    def _open_dispute(self, charge_id: str, amount: int | None, reason: str) -> JSON:
        charge = self._get("charge", charge_id)
        if charge["status"] != "succeeded":
            raise StripeFakeError(
                f"Charge {charge_id} has status {charge['status']}; it cannot be disputed.",
                param="charge",
            )
        if self._dispute_for(charge_id) is not None:
            raise StripeFakeError(f"Charge {charge_id} is already disputed.", param="charge")
        if reason not in _DISPUTE_REASONS:
            raise StripeFakeError(f"Invalid dispute reason: {reason}", param="reason")
        disputable = charge["amount"] - charge["amount_refunded"]
        if disputable <= 0:
            raise StripeFakeError(
                f"Charge {charge_id} is fully refunded; it cannot be disputed.", param="charge"
            )
        if amount is None:
            amount = disputable
        amount = _as_int(amount, "amount", minimum=1, maximum=disputable)
        now = self._now()
        dispute: JSON = {
            "id": _new_id("dp_"),
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [],
            "charge": charge_id,
            "created": now,
            "currency": charge["currency"],
            "evidence_details": {
                "due_by": now + _DISPUTE_RESPONSE_WINDOW,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": "needs_response",
        }
        self._objects["dispute"][dispute["id"]] = dispute
        charge["disputed"] = True
        return self._emit("charge.dispute.created", dispute, _NO_REQUEST)

    def _close_dispute(self, dispute_id: str, won: bool) -> JSON:
        dispute = self._get("dispute", dispute_id)
        if dispute["status"] not in _OPEN_DISPUTE_STATUSES:
            raise StripeFakeError(
                f"Dispute {dispute_id} is already closed ({dispute['status']}).", param="dispute"
            )
        previous = {"status": dispute["status"]}
        dispute["status"] = "won" if won else "lost"
        return self._emit("charge.dispute.closed", dispute, _NO_REQUEST, previous)

    # ---------------------------------------------------------------- HTTP API

    def handle_api(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: str = "",
        body: bytes = b"",
    ) -> tuple[int, JSON, dict[str, str]]:
        """Serve one ``/v1`` request: auth, parsing, idempotency, dispatch, webhooks.

        Blocking (it may take the lock); the ASGI app runs it in a worker thread.

        Returns:
            ``(status, json_body, response_headers)``.
        """
        headers = {key.lower(): value for key, value in headers.items()}
        request_id = _new_id("req_", 14)
        response_headers = {
            "Request-Id": request_id,
            "Stripe-Version": headers.get("stripe-version") or self.api_version,
        }
        method = method.upper()
        idempotency_key = headers.get("idempotency-key") if method == "POST" else None
        if idempotency_key:
            response_headers["Idempotency-Key"] = idempotency_key
        try:
            api_key = self._authenticate(headers.get("authorization"))
            params = parse_params(
                parse_qsl(query, keep_blank_values=True)
                + parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            )
            handler, args = self._route(method, path)
        except StripeFakeError as exc:
            return exc.status, exc.to_body(), response_headers
        ctx = _RequestContext(request_id, idempotency_key, headers.get("stripe-account") or None)
        events: list[JSON] = []
        with self._lock:
            scope = (api_key, idempotency_key) if idempotency_key else None
            saved = self._idempotency.get(scope) if scope else None
            if saved is not None:
                try:
                    self._check_idempotent_match(saved, method, path, params, idempotency_key)
                except StripeFakeError as exc:
                    return exc.status, exc.to_body(), response_headers
                response_headers["Idempotent-Replayed"] = "true"
                return 200, copy.deepcopy(saved.body), response_headers
            try:
                result, events = handler(params, ctx, *args)
            except StripeFakeError as exc:
                # Errors are not saved: the client may fix the request and retry with the key.
                return exc.status, exc.to_body(), response_headers
            if scope is not None:
                self._idempotency[scope] = _IdempotentResult(
                    method, path, params, copy.deepcopy(result)
                )
        self._enqueue(events)
        return 200, result, response_headers

    def _authenticate(self, authorization: str | None) -> str:
        if not authorization:
            raise StripeFakeError(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
                status=401,
            )
        scheme, _, credential = authorization.partition(" ")
        key = credential.strip()
        if scheme.lower() == "basic":
            # curl -u sk_test_...: sends the key as the Basic username.
            try:
                key = base64.b64decode(key).decode().partition(":")[0]
            except ValueError:
                key = ""
        elif scheme.lower() != "bearer":
            key = authorization
        if key not in self.api_keys:
            raise StripeFakeError(f"Invalid API Key provided: {_redact_key(key)}", status=401)
        return key

    def _route(self, method: str, path: str) -> tuple[_ApiHandler, tuple[str, ...]]:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler, match.groups()
        raise StripeFakeError(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
            status=404,
        )

    @staticmethod
    def _check_idempotent_match(
        saved: _IdempotentResult, method: str, path: str, params: JSON, key: str | None
    ) -> None:
        if (saved.method, saved.path) != (method, path):
            raise StripeFakeError(
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{method} {path}' vs '{saved.method} {saved.path}'). Try using "
                f"a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        if saved.params != params:
            raise StripeFakeError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )

    def _api_retriever(self, kind: str) -> _ApiHandler:
        def retrieve(params: JSON, ctx: _RequestContext, object_id: str) -> tuple[JSON, list[JSON]]:
            _check_unknown(params, frozenset({"expand"}))
            return self._render(self._get(kind, object_id), _expand_paths(params)), []

        return retrieve

    def _api_create_session(self, params: JSON, ctx: _RequestContext) -> tuple[JSON, list[JSON]]:
        return self._create_session(params), []

    def _api_retrieve_session(
        self, params: JSON, ctx: _RequestContext, session_id: str
    ) -> tuple[JSON, list[JSON]]:
        _check_unknown(params, frozenset({"expand"}))
        session = self._get("checkout.session", session_id)
        return self._render(session, _expand_paths(params)), []

    def _api_session_line_items(
        self, params: JSON, ctx: _RequestContext, session_id: str
    ) -> tuple[JSON, list[JSON]]:
        _check_unknown(params, frozenset({"expand", "limit", "starting_after"}))
        self._get("checkout.session", session_id)
        items = self._line_items.get(session_id, [])
        return self._list(items, params, f"/v1/checkout/sessions/{session_id}/line_items"), []

    def _api_list_sessions(self, params: JSON, ctx: _RequestContext) -> tuple[JSON, list[JSON]]:
        _check_unknown(
            params,
            frozenset({"expand", "limit", "payment_intent", "starting_after", "status"}),
        )
        sessions = [
            session
            for session in reversed(self._objects["checkout.session"].values())
            if params.get("payment_intent") in (None, session["payment_intent"])
            and params.get("status") in (None, session["status"])
        ]
        return self._list(sessions, params, "/v1/checkout/sessions"), []

    def _api_expire(
        self, params: JSON, ctx: _RequestContext, session_id: str
    ) -> tuple[JSON, list[JSON]]:
        _check_unknown(params, frozenset({"expand"}))
        event = self._expire(session_id, ctx)
        session = self._get("checkout.session", session_id)
        return self._render(session, _expand_paths(params)), [event]

    def _api_create_refund(self, params: JSON, ctx: _RequestContext) -> tuple[JSON, list[JSON]]:
        _check_unknown(params, _REFUND_PARAMS)
        charge_id = params.get("charge") or None
        intent_id = params.get("payment_intent") or None
        if charge_id is None and intent_id is None:
            raise StripeFakeError(
                "One of the following params should be provided for this request: "
                "charge or payment_intent.",
                param="charge",
            )
        if intent_id is not None:
            intent = self._get("payment_intent", str(intent_id), "payment_intent")
            if intent["latest_charge"] is None or (
                charge_id is not None and charge_id != intent["latest_charge"]
            ):
                raise StripeFakeError(
                    f"PaymentIntent {intent_id} has no matching charge to refund.",
                    param="payment_intent",
                )
            charge_id = intent["latest_charge"]
        charge = self._get("charge", str(charge_id), "charge")
        amount = params.get("amount")
        if amount is not None:
            amount = _as_int(amount, "amount", minimum=1)
        reason = params.get("reason") or None
        if reason is not None and reason not in _REFUND_REASONS:
            raise StripeFakeError(
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                param="reason",
            )
        metadata = _as_metadata(params.get("metadata"), "metadata")
        expand = _expand_paths(params)
        extra, fee_refunded = self._refund_destination(charge, params)
        refund, event = self._refund(charge, amount, reason, metadata, ctx)
        refund.update(extra)
        if extra["transfer_reversal"] is not None:
            self._reverse_destination(charge, refund["amount"])
        if fee_refunded:
            self._fee_refunds.add(refund["id"])
        return self._render(refund, expand), [event]

    def _api_list_events(self, params: JSON, ctx: _RequestContext) -> tuple[JSON, list[JSON]]:
        _check_unknown(params, frozenset({"limit", "starting_after", "type"}))
        wanted = params.get("type")
        events = [
            event
            for event in reversed(self._objects["event"].values())
            if wanted is None or event["type"] == wanted
        ]
        return self._list(events, params, "/v1/events"), []

    # ---------------------------------------------------------------- hosted pay page

    def pay_page(self, session_id: str) -> tuple[int, str]:
        """Render the hosted checkout page: ``(status, html)``."""
        with self._lock:
            session = copy.deepcopy(self._objects["checkout.session"].get(session_id))
            items = copy.deepcopy(self._line_items.get(session_id, []))
        if session is None:
            return 404, _page("Checkout not found", "<p>This checkout session does not exist.</p>")
        total = format_amount(session["amount_total"], session["currency"])
        summary = _describe(items)
        if session["status"] == "complete":
            body = "<p>This checkout session is already paid.</p>"
            return 200, _page(f"Paid {total} for {summary}", body)
        if session["status"] == "expired":
            return 410, _page("Checkout expired", "<p>This checkout session has expired.</p>")
        rows = "".join(
            f"<li>{html.escape(item['description'])} &times; {item['quantity']}: "
            f"{format_amount(item['amount_total'], item['currency'])}</li>"
            for item in items
        )
        quoted_id = html.escape(session_id, quote=True)
        email = session["customer_email"]
        email_line = f"<p>Receipt to {html.escape(email)}</p>" if email else ""
        cancel = (
            f'<p><a href="/pay/{quoted_id}/cancel">Cancel and go back</a></p>'
            if session["cancel_url"]
            else ""
        )
        body = (
            '<p class="note">Test mode: no real card is charged.</p>'
            f'<ul aria-label="Order summary">{rows}</ul>{email_line}'
            f'<form method="post" action="/pay/{quoted_id}">'
            f'<button type="submit">Pay {total}</button></form>{cancel}'
        )
        return 200, _page(f"Pay {total} for {summary}", body)

    def pay(self, session_id: str) -> tuple[int, str]:
        """Handle the Pay button: complete, deliver the webhook, then point at success_url.

        Returns:
            ``(303, location)`` on success, else ``(status, html)``.
        """
        # Already paid (a double submit) or gone: the state read below decides the answer.
        with contextlib.suppress(StripeFakeError):
            self.complete_session(session_id)
        with self._lock:
            session = self._objects["checkout.session"].get(session_id)
            status = session["status"] if session else None
            success_url = session["success_url"] if session else ""
        if status == "complete":
            return 303, success_url.replace("{CHECKOUT_SESSION_ID}", session_id)
        return self.pay_page(session_id)

    def cancel_target(self, session_id: str) -> str | None:
        """Where the pay page's Cancel link leads (the session's cancel_url), if anywhere."""
        with self._lock:
            session = self._objects["checkout.session"].get(session_id)
            return session["cancel_url"] if session else None

    # ---------------------------------------------------------------- /_fake control API

    def handle_control(self, method: str, path: str, params: JSON) -> tuple[int, JSON]:
        """Serve one ``/_fake`` scenario-control request: ``(status, json_body)``."""
        try:
            return 200, self._control(method.upper(), path.strip("/"), params)
        except StripeFakeError as exc:
            return exc.status, exc.to_body()
        except ValueError as exc:
            return 400, StripeFakeError(str(exc)).to_body()

    def _control(self, method: str, path: str, params: JSON) -> JSON:
        parts = path.split("/")
        match method, parts:
            case "GET", ["health"]:
                return {"object": "stripe_fake.health", "ok": True}
            case "POST", ["checkout", "sessions", session_id, "complete"]:
                return self.complete_session(
                    session_id,
                    async_payment=_as_bool(params.get("async_payment", False), "async_payment"),
                    email=params.get("email") or None,
                )
            case "POST", ["checkout", "sessions", session_id, "expire"]:
                return self.expire_session(session_id)
            case "POST", ["checkout", "sessions", session_id, "async_payment", "succeed"]:
                return self.succeed_async_payment(session_id)
            case "POST", ["checkout", "sessions", session_id, "async_payment", "fail"]:
                return self.fail_async_payment(session_id)
            case "POST", ["expire_due_sessions"]:
                return {"object": "list", "data": self.expire_due_sessions()}
            case "POST", ["charges", charge_id, "refund"]:
                amount = params.get("amount")
                return self.refund_charge(
                    charge_id, None if amount in (None, "") else _as_int(amount, "amount")
                )
            case "POST", ["charges", charge_id, "dispute"]:
                amount = params.get("amount")
                return self.open_dispute(
                    charge_id,
                    amount=None if amount in (None, "") else _as_int(amount, "amount"),
                    reason=params.get("reason") or "fraudulent",
                )
            case "POST", ["disputes", dispute_id, "close"]:
                return self.close_dispute(
                    dispute_id, _as_bool(_require(params, "won", "won"), "won")
                )
            case "POST", ["accounts", account_id, "complete_onboarding"]:
                return self.complete_onboarding(account_id)
            case "POST", ["accounts", account_id, "settle"]:
                return self.settle_balance(account_id)
            case "POST", ["accounts", account_id, "payout"]:
                return self.pay_out(account_id)
            case "GET", ["events"]:
                return {"object": "list", "data": self.events(params.get("type") or None)}
            case "POST", ["events", event_id, "redeliver"]:
                return self.redeliver(event_id).to_dict()
            case "GET", ["deliveries"]:
                return {"object": "list", "data": [d.to_dict() for d in self.deliveries]}
            case "POST", ["webhook"]:
                url = _as_url(_require(params, "url", "url"), "url")
                self.configure_webhook(url, _as_str(_require(params, "secret", "secret"), "secret"))
                return {"object": "stripe_fake.webhook", "url": url}
            case "DELETE", ["webhook"]:
                self.configure_webhook(None)
                return {"object": "stripe_fake.webhook", "url": None}
            case "POST", ["reset"]:
                self.reset()
                return {"object": "stripe_fake.reset", "ok": True}
        raise StripeFakeError(f"Unrecognized control URL ({method}: /_fake/{path}).", status=404)


def _delivery_log_args(delivery: WebhookDelivery) -> tuple[str, str, str, str | None]:
    return delivery.event_id, delivery.event_type, delivery.url, delivery.error


def _describe(items: list[JSON]) -> str:
    """Summarize line items as HTML-safe text, e.g. ``Rust 101, Go 201 &times; 2``."""
    return ", ".join(
        html.escape(item["description"])
        + ("" if item["quantity"] == 1 else f" &times; {item['quantity']}")
        for item in items
    )


# --------------------------------------------------------------------------------------------
# ASGI app


def create_app(fake: StripeFake) -> Starlette:
    """Build the ASGI app serving ``fake``: ``/v1``, ``/pay`` and ``/_fake`` routes."""

    async def api(request: Request) -> Response:
        body = await request.body()
        # Handlers take a threading lock and may POST webhooks: keep them off the event loop,
        # or a webhook handler that calls back into this server would deadlock it.
        status, payload, headers = await run_in_threadpool(
            fake.handle_api,
            request.method,
            request.url.path,
            dict(request.headers),
            request.url.query,
            body,
        )
        return JSONResponse(payload, status_code=status, headers=headers)

    async def pay(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        if request.method == "POST":
            status, content = await run_in_threadpool(fake.pay, session_id)
            if status == 303:
                return RedirectResponse(content, status_code=303)
        else:
            status, content = await run_in_threadpool(fake.pay_page, session_id)
        return HTMLResponse(content, status_code=status)

    async def cancel(request: Request) -> Response:
        target = fake.cancel_target(request.path_params["session_id"])
        if target is None:
            return HTMLResponse(_page("Nothing to go back to", ""), status_code=404)
        return RedirectResponse(target, status_code=303)

    async def onboard(request: Request) -> Response:
        token = request.path_params["token"]
        handler = fake.submit_onboarding if request.method == "POST" else fake.onboarding_page
        status, content = await run_in_threadpool(handler, token)
        if status == 303:
            return RedirectResponse(content, status_code=303)
        return HTMLResponse(content, status_code=status)

    async def control(request: Request) -> Response:
        body = await request.body()
        params: JSON = dict(parse_qsl(request.url.query, keep_blank_values=True))
        if body:
            if request.headers.get("content-type", "").startswith("application/json"):
                try:
                    decoded = json.loads(body)
                except ValueError:
                    decoded = None
                if not isinstance(decoded, dict):
                    error = StripeFakeError("Request body must be a JSON object.")
                    return JSONResponse(error.to_body(), status_code=400)
                params.update(decoded)
            else:
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        status, payload = await run_in_threadpool(
            fake.handle_control, request.method, request.path_params["path"], params
        )
        return JSONResponse(payload, status_code=status)

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
    return Starlette(
        routes=[
            Route("/v1/{path:path}", api, methods=methods),
            Route("/pay/{session_id}", pay, methods=["GET", "POST"]),
            Route("/pay/{session_id}/cancel", cancel, methods=["GET"]),
            Route("/connect/onboard/{token}", onboard, methods=["GET", "POST"]),
            Route("/_fake/{path:path}", control, methods=methods),
        ]
    )


# --------------------------------------------------------------------------------------------
# CLI


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    api_key: str = DEFAULT_API_KEY,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    *,
    public_url: str | None = None,
) -> None:
    """Run the fake in the foreground (for ``tuition up``) until interrupted.

    Args:
        host: Interface to bind.
        port: Port to bind.
        api_key: The ``sk_test_`` key the app is configured with.
        webhook_url: Where to POST events (the app's Stripe webhook route), if anywhere.
        webhook_secret: The app's webhook signing secret; required with ``webhook_url``.
        public_url: Base URL browsers use for the pay page, when not ``http://host:port``.
    """
    fake = StripeFake(api_key, host=host, port=port, public_url=public_url)
    if webhook_url:
        fake.configure_webhook(webhook_url, webhook_secret)
    fake.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """``python -m backend.devtools.stripe_fake --help``."""
    parser = argparse.ArgumentParser(description="Serve a local Stripe fake.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    parser.add_argument("--public-url")
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(
        args.host,
        args.port,
        args.api_key,
        args.webhook_url,
        args.webhook_secret,
        public_url=args.public_url,
    )


if __name__ == "__main__":
    main()
