"""/api/v1/webhooks/stripe: signed deliveries from Stripe.

1. The signature is verified on the raw body (`stripe.WebhookSignature.verify_header`,
   default tolerance). Any failure, including an unset secret, stores the delivery as invalid
   and answers 400 with nothing acted on.
2. The body's shape is checked (`service.parse_event`): a signed body that is not a
   well-formed event is stored as rejected and answered 400 `malformed_event`.
3. The verified delivery is stored and committed (UNIQUE event id: duplicates, even
   concurrent ones, are recognized) so it is durable whatever happens next.
4. The object is re-fetched from Stripe, then `process_stripe_event` applies it in one
   transaction. An object Stripe answers 404 for is acknowledged (200) with the event stored
   as `rejected:object_not_found`: Stripe has nothing to deliver again. Any other failure is
   recorded on the stored event and answered 500, so Stripe retries (the retry finds the
   unprocessed event and processes it).
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from backend.api.deps import ServicesDep
from backend.core.errors import BadRequestError, DomainError
from backend.core.openapi import errors
from backend.integrations.stripe_gateway import StripeObjectMissingError
from backend.webhooks import service
from backend.webhooks.schemas import WebhookAck

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY = 1024 * 1024


class PayloadTooLargeError(DomainError):
    """The body exceeds what a Stripe event can be."""

    code = "payload_too_large"
    status_code = 413
    message = "webhook body too large"


class WebhookProcessingError(DomainError):
    """Processing failed; Stripe should retry."""

    code = "webhook_processing_failed"
    status_code = 500
    message = "The event could not be processed; it will be retried."


@router.post("/stripe", response_model=WebhookAck, responses=errors(400, 503))
async def stripe_webhook(request: Request, services: ServicesDep) -> WebhookAck:
    """Receive a Stripe event (signature-checked, deduplicated, re-fetched, applied)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLargeError()
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLargeError()
    headers = {k: v for k, v in request.headers.items() if k.lower() in service.KEPT_HEADERS}
    secret = services.settings.stripe_webhook_secret
    db = services.db

    try:
        if secret is None or not secret.get_secret_value().strip():
            raise stripe.SignatureVerificationError("no webhook secret is configured", None)
        stripe.WebhookSignature.verify_header(
            raw,
            request.headers.get("stripe-signature"),
            secret.get_secret_value(),
            # verify_header checks no age unless told (construct_event passes this default).
            tolerance=stripe.Webhook.DEFAULT_TOLERANCE,
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        async with db.session() as session:
            await session.run_sync(
                lambda s: service.store_invalid_delivery(
                    s, raw_body=raw, headers=headers, error=error
                )
            )
        raise BadRequestError(
            "webhook signature verification failed", code="invalid_signature"
        ) from exc

    try:
        envelope = service.parse_event(raw)
    except service.MalformedEventError as exc:
        reason = exc.message
        async with db.session() as session:
            await session.run_sync(
                lambda s: service.store_invalid_delivery(
                    s, raw_body=raw, headers=headers, error=reason, signature_valid=True
                )
            )
        raise
    event_id, event_type, target = envelope.event_id, envelope.type, envelope.target

    async with db.session() as session:
        row, is_new = await session.run_sync(
            lambda s: service.store_event(
                s, event_id=event_id, event_type=event_type, raw_body=raw, headers=headers
            )
        )
        processed, outcome = row.processed, row.outcome
    if processed:
        return WebhookAck(received=True, event_id=event_id, duplicate=True, outcome=outcome)

    objects: dict[tuple[str, str], dict[str, Any] | None] = {}
    try:
        if target is not None:
            try:
                objects[target] = await services.stripe.fetch(*target)
            except StripeObjectMissingError:
                objects[target] = None
        async with db.session() as session:
            outcome = await session.run_sync(
                lambda s: service.process_stripe_event(
                    s,
                    event_id,
                    source=service.PrefetchedSource(objects),
                    checkout_key=services.stripe.checkout_key(),
                )
            )
    except Exception as exc:
        logger.exception("processing Stripe event %s (%s) failed", event_id, event_type)
        message = f"{type(exc).__name__}: {exc}"

        def note(s: Session) -> None:
            service.record_processing_error(s, event_id, message)

        async with db.session() as session:
            await session.run_sync(note)
        raise WebhookProcessingError() from exc
    return WebhookAck(received=True, event_id=event_id, duplicate=not is_new, outcome=outcome)
