"""Enqueueing side effects in the transaction of the change that causes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.db import utcnow
from backend.outbox.models import OutboxMessage


class Topics:
    """Outbox topics the worker relays."""

    CERTIFICATE_REQUESTED = "certificate.requested"
    CERTIFICATE_REVOKE = "certificate.revoke"  # revoke(tokenId, reasonCode) on-chain
    # Mirror an entitlement on-chain (grantAccess / revokeAccess): card, free claim, admin grant.
    ACCESS_GRANT = "access.chain_grant"
    ACCESS_REVOKE = "access.chain_revoke"
    # An admin's verification of a provider: verifyProvider / unverifyProvider on-chain.
    PROVIDER_VERIFICATION = "provider.verification"
    RECEIPT_EMAIL = "email.receipt"
    # A lost dispute of a destination charge: take the provider's share back (Stripe debited
    # the platform for the whole payment).
    CARD_TRANSFER_REVERSAL = "card.transfer_reversal"
    # A stored Stripe event the API could not process (job records only: the sweep publishes).
    STRIPE_EVENT = "stripe.event"


def enqueue(
    session: Session,
    topic: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    available_at: datetime | None = None,
) -> OutboxMessage:
    """Add an outbox message; with `dedupe_key`, a second call returns the first message."""
    if dedupe_key is not None:
        existing = session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return existing
    message = OutboxMessage(
        topic=topic,
        payload=payload,
        dedupe_key=dedupe_key,
        available_at=available_at or utcnow(),
    )
    if dedupe_key is None:
        session.add(message)
        session.flush()
        return message
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # A concurrent transaction enqueued the same side effect first.
        existing = session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
        )
        assert existing is not None
        return existing
    return message
