"""Stripe access through the official SDK (`stripe.StripeClient`, API version pinned in settings).

Async methods serve the API; `fetch_sync` serves the worker (the same re-fetch logic when it
processes webhook events out of band). TUITION_STRIPE_API_BASE points the SDK at the local
Stripe stand-in in tests and demos; production leaves it unset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stripe

from backend.core.config import Settings
from backend.core.errors import ServiceUnavailableError, UpstreamError
from backend.core.security import derive_key, fields_signed, sign_fields

logger = logging.getLogger(__name__)

FETCHABLE = ("checkout.session", "charge", "dispute", "payment_intent")


class StripeObjectMissingError(Exception):
    """Stripe answered 404 for an object (it does not exist in this account and mode)."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"Stripe has no {kind} {object_id!r}")
        self.kind, self.object_id = kind, object_id


class StripeGateway:
    """The few Stripe calls Tuition makes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: stripe.StripeClient | None = None

    def checkout_key(self) -> bytes:
        """The key that signs checkout metadata (derived from the Stripe secret key)."""
        return checkout_signing_key(self.settings)

    def client(self) -> stripe.StripeClient:
        """The SDK client (created on first use)."""
        if self._client is None:
            key = self.settings.stripe_secret_key.get_secret_value()
            if not key:
                raise ServiceUnavailableError(
                    "card payments are not configured", code="stripe_not_configured"
                )
            base = {"api": self.settings.stripe_api_base} if self.settings.stripe_api_base else None
            self._client = stripe.StripeClient(
                key,
                stripe_version=self.settings.stripe_api_version,
                base_addresses=base,  # type: ignore[arg-type]
                http_client=stripe.HTTPXClient(allow_sync_methods=True),
                max_network_retries=2,
            )
        return self._client

    async def create_checkout_session(
        self,
        *,
        order_id: str,
        order_ref: str,
        course_id: int,
        title: str,
        address: str,
        amount: int,
        currency: str,
        expires_at: datetime,
        destination: str | None = None,
        application_fee: int = 0,
    ) -> dict[str, Any]:
        """A hosted Checkout Session for one course (idempotent per order).

        With `destination` (the provider's Connect account) the payment is a destination charge:
        Stripe transfers it to the provider and keeps `application_fee` for the platform. The
        metadata describes the order, signed (`checkout_metadata`), so that a database restored
        from before the checkout can rebuild it from the session.
        """
        public = self.settings.public_url.rstrip("/")
        metadata = checkout_metadata(
            self.checkout_key(),
            order_id=order_id,
            order_ref=order_ref,
            course_id=course_id,
            address=address,
            amount=amount,
            currency=currency,
            fee=application_fee,
            destination=destination,
        )
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency,
                        "unit_amount": amount,
                        "product_data": {"name": title[:250]},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": _intent_data(metadata, destination, application_fee),
            "client_reference_id": order_id,
            "success_url": f"{public}/checkout/return?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{public}/courses/{course_id}?checkout=cancelled",
            "expires_at": int(expires_at.timestamp()),
        }
        try:
            session = await self.client().v1.checkout.sessions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout:{order_id}"},
            )
        except stripe.StripeError as exc:
            raise _upstream(f"the checkout of order {order_id}", exc) from exc
        return session.to_dict()

    async def refund(
        self, *, order_id: str, payment_intent: str, destination_charge: bool = False
    ) -> dict[str, Any]:
        """Refund a card payment in full (idempotent per order); a destination charge's
        transfer is reversed and its application fee refunded, so the provider and the platform
        each give back their share."""
        params: dict[str, Any] = {
            "payment_intent": payment_intent,
            "metadata": {"order_id": order_id},
        }
        if destination_charge:
            params |= {"reverse_transfer": True, "refund_application_fee": True}
        try:
            refund = await self.client().v1.refunds.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"refund:{order_id}"},
            )
        except stripe.StripeError as exc:
            raise _upstream(f"the refund of order {order_id}", exc) from exc
        return refund.to_dict()

    async def create_connect_account(self, *, provider: str) -> dict[str, Any]:
        """A Connect Express account for `provider` (idempotent per provider address)."""
        params = {
            "type": "express",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "metadata": {"provider": provider},
        }
        try:
            account = await self.client().v1.accounts.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"connect-account:{provider}"},
            )
        except stripe.StripeError as exc:
            raise _upstream(f"the Connect account of {provider}", exc) from exc
        return dict(account.to_dict())

    async def create_account_link(self, *, account_id: str) -> dict[str, Any]:
        """A one-time onboarding link of `account_id`, back to the provider dashboard."""
        public = self.settings.public_url.rstrip("/")
        params = {
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": f"{public}/provider?connect=refresh",
            "return_url": f"{public}/provider?connect=return",
        }
        try:
            link = await self.client().v1.account_links.create_async(
                params=params,  # type: ignore[arg-type]
            )
        except stripe.StripeError as exc:
            raise _upstream(f"the onboarding link of {account_id}", exc) from exc
        return dict(link.to_dict())

    async def connected_balance(self, account_id: str) -> dict[str, Any]:
        """The balance of a connected account (pending and available, per currency)."""
        try:
            balance = await self.client().v1.balance.retrieve_async(
                options={"stripe_account": account_id}
            )
        except stripe.StripeError as exc:
            raise _upstream(f"the balance of {account_id}", exc) from exc
        return dict(balance.to_dict())

    async def connected_payouts(self, account_id: str, *, limit: int) -> list[dict[str, Any]]:
        """A connected account's latest payouts to its bank, newest first."""
        try:
            page = await self.client().v1.payouts.list_async(
                params={"limit": limit}, options={"stripe_account": account_id}
            )
        except stripe.StripeError as exc:
            raise _upstream(f"the payouts of {account_id}", exc) from exc
        return [dict(payout.to_dict()) for payout in page.data]

    def reverse_transfer_sync(self, *, transfer_id: str, amount: int, order_id: str) -> str:
        """Take `amount` of a transfer back from the connected account (idempotent per
        order); returns the reversal's id."""
        reversal = self.client().v1.transfers.reversals.create(
            transfer_id,
            params={"amount": amount, "metadata": {"order_id": order_id}},
            options={"idempotency_key": f"transfer-reversal:{order_id}"},
        )
        return str(reversal.id)

    async def fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        """The current state of a Stripe object (webhooks never trust the payload's state).

        Raises:
            StripeObjectMissingError: Stripe answered 404.
        """
        try:
            return await self._fetch(kind, object_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise StripeObjectMissingError(kind, object_id) from exc
            raise

    async def _fetch(self, kind: str, object_id: str) -> dict[str, Any]:
        v1 = self.client().v1
        obj: Any
        if kind == "checkout.session":
            obj = await v1.checkout.sessions.retrieve_async(object_id)
        elif kind == "charge":
            obj = await v1.charges.retrieve_async(object_id)
        elif kind == "dispute":
            # The charge carries the order's metadata: a dispute may arrive before the order
            # learned its payment's ids.
            obj = await v1.disputes.retrieve_async(object_id, params={"expand": ["charge"]})
        elif kind == "payment_intent":
            obj = await v1.payment_intents.retrieve_async(object_id)
        elif kind == "account":
            obj = await v1.accounts.retrieve_async(object_id)
        else:
            raise ValueError(f"cannot fetch Stripe objects of kind {kind!r}")
        return dict(obj.to_dict())

    def expire_checkout_session_sync(self, session_id: str) -> dict[str, Any] | None:
        """Expire an open Checkout Session so nobody can pay it any more; None when Stripe
        refuses because it is no longer open (it completed or expired meanwhile).

        Raises:
            StripeObjectMissingError: Stripe has no such session.
        """
        try:
            return dict(self.client().v1.checkout.sessions.expire(session_id).to_dict())
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise StripeObjectMissingError("checkout.session", session_id) from exc
            return None

    def fetch_sync(self, kind: str, object_id: str) -> dict[str, Any]:
        """`fetch` for synchronous callers (the worker)."""
        try:
            return self._fetch_sync(kind, object_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise StripeObjectMissingError(kind, object_id) from exc
            raise

    def _fetch_sync(self, kind: str, object_id: str) -> dict[str, Any]:
        v1 = self.client().v1
        obj: Any
        if kind == "checkout.session":
            obj = v1.checkout.sessions.retrieve(object_id)
        elif kind == "charge":
            obj = v1.charges.retrieve(object_id)
        elif kind == "dispute":
            obj = v1.disputes.retrieve(object_id, params={"expand": ["charge"]})
        elif kind == "payment_intent":
            obj = v1.payment_intents.retrieve(object_id)
        elif kind == "account":
            obj = v1.accounts.retrieve(object_id)
        else:
            raise ValueError(f"cannot fetch Stripe objects of kind {kind!r}")
        return dict(obj.to_dict())


# What a Checkout Session's metadata says of its order, all signed.
CHECKOUT_FIELDS = (
    "order_id",
    "order_ref",
    "course_id",
    "address",
    "amount",
    "currency",
    "fee",
    "destination",
)


def checkout_signing_key(settings: Settings) -> bytes:
    """The key of checkout metadata signatures."""
    return derive_key(settings.stripe_secret_key.get_secret_value(), "checkout-metadata")


def checkout_metadata(
    key: bytes,
    *,
    order_id: str,
    order_ref: str,
    course_id: int,
    address: str,
    amount: int,
    currency: str,
    fee: int,
    destination: str | None,
) -> dict[str, str]:
    """The order's description for a Checkout Session's metadata, with its signature."""
    fields = {
        "order_id": order_id,
        "order_ref": order_ref,
        "course_id": str(course_id),
        "address": address,
        "amount": str(amount),
        "currency": currency,
        "fee": str(fee),
        "destination": destination or "",
    }
    signature = sign_fields(fields, key)
    # Stripe drops metadata set to "" (that is how a key is deleted): no destination, no key.
    return {**{k: v for k, v in fields.items() if v}, "signature": signature}


def signed_checkout_fields(metadata: Mapping[str, Any], key: bytes) -> dict[str, str] | None:
    """The order fields of a Checkout Session's metadata when this application signed them;
    None for a session made elsewhere (or before sessions were signed)."""
    fields = {name: metadata.get(name, "") for name in CHECKOUT_FIELDS}
    signature = metadata.get("signature")
    if not isinstance(signature, str) or not all(isinstance(v, str) for v in fields.values()):
        return None
    if not all(fields[name] for name in CHECKOUT_FIELDS if name != "destination"):
        return None
    return fields if fields_signed(fields, signature, key) else None


def _intent_data(
    metadata: dict[str, str], destination: str | None, application_fee: int
) -> dict[str, Any]:
    # Metadata is copied by Stripe onto the PaymentIntent and its charges: refunds and disputes
    # find their order even before checkout.session.completed was processed.
    data: dict[str, Any] = {"metadata": metadata}
    if destination is not None:
        data["transfer_data"] = {"destination": destination}
        if application_fee > 0:
            data["application_fee_amount"] = application_fee
    return data


def _upstream(what: str, exc: stripe.StripeError) -> UpstreamError:
    """Stripe's refusal or failure as the API's 502 `stripe_error` (logged here, once)."""
    logger.warning("Stripe failed on %s: %s", what, exc)
    return UpstreamError(f"Stripe failed on {what}: {exc.user_message or exc}", code="stripe_error")
