"""Receipt emails for paid and refunded orders, at most one per (order, kind).

The (order, kind) row in `worker_sent_receipts` is claimed before the email goes out and marked
sent after. A concurrent run finding a fresh claim backs off; a claim older than the lease (its
worker died mid-send) is taken over, and the deterministic Message-ID lets the file backend
overwrite and mail clients drop a duplicate.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Course, Token
from backend.core.config import WorkerSettings
from backend.core.db import session_scope, utcnow
from backend.core.errors import PermanentError, RetryableError
from backend.core.security import NATIVE_TOKEN
from backend.orders.models import Order, Rail
from backend.users.models import User
from backend.worker import metrics
from backend.worker.email import EmailBackend, build_receipt, format_amount, receipt_message_id
from backend.worker.models import SentReceipt

log = logging.getLogger(__name__)

KINDS = ("paid", "refunded")
# ISO 4217 currencies without minor units (Stripe's list of zero-decimal currencies, abridged).
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)


def _amount_text(s: Session, order: Order) -> str:
    if order.rail == Rail.CARD:
        currency = (order.currency or "").lower()
        decimals = 0 if currency in ZERO_DECIMAL else 2
        return format_amount(order.amount, decimals, currency.upper())
    if order.token is None or order.token == NATIVE_TOKEN:
        return format_amount(order.amount, 18, "ETH")
    token = s.get(Token, (order.chain_id, order.token))
    if token is None:
        return f"{order.amount} (base units of {order.token})"
    return format_amount(order.amount, token.decimals, token.symbol)


def send_receipt(
    order_id: str,
    kind: str,
    *,
    factory: sessionmaker[Session],
    backend: EmailBackend,
    settings: WorkerSettings,
) -> dict[str, Any]:
    """Send the `kind` receipt of `order_id` unless it was sent already."""
    if kind not in KINDS:
        raise PermanentError(f"unknown receipt kind {kind!r}")
    try:
        message = _claim(order_id, kind, factory=factory, backend=backend, settings=settings)
    except IntegrityError as exc:
        # Another first run inserted the claim at the same moment: let it send.
        raise RetryableError(f"receipt {kind} of {order_id} claimed concurrently") from exc
    if isinstance(message, dict):
        return message
    try:
        backend.send(message)
    except OSError as exc:  # SMTP down, disk full: try again later
        raise RetryableError(f"sending receipt {kind} of {order_id}: {exc}") from exc
    with session_scope(factory) as s:
        row = s.scalars(
            select(SentReceipt).where(SentReceipt.order_ref == order_id, SentReceipt.kind == kind)
        ).one()
        row.status = "sent"
        row.sent_at = utcnow()
    metrics.RECEIPTS_SENT.labels(kind=kind).inc()
    log.info("receipt %s of order %s sent to %s", kind, order_id, message["To"])
    return {"order_id": order_id, "kind": kind, "outcome": "sent"}


def _claim(
    order_id: str,
    kind: str,
    *,
    factory: sessionmaker[Session],
    backend: EmailBackend,
    settings: WorkerSettings,
) -> EmailMessage | dict[str, Any]:
    """Claim (order, kind) and build the message, or say why nothing is to be sent."""
    now = utcnow()
    with session_scope(factory) as s:
        claim = s.scalars(
            select(SentReceipt).where(SentReceipt.order_ref == order_id, SentReceipt.kind == kind)
        ).one_or_none()
        if claim is not None and claim.status != "sending":
            return {"order_id": order_id, "kind": kind, "outcome": f"already_{claim.status}"}
        lease = timedelta(seconds=settings.receipt_claim_lease)
        if claim is not None and now - claim.claimed_at < lease:
            raise RetryableError(f"receipt {kind} of {order_id} is being sent by another run")
        order = s.get(Order, order_id)
        if order is None:
            raise PermanentError(f"order {order_id} does not exist")
        course = s.get(Course, order.course_id)
        title = course.title if course else f"course {order.course_id}"
        email = s.scalar(select(User.email).where(User.address == order.buyer))
        message = (
            build_receipt(
                kind=kind,
                order_ref=order.id,
                recipient=email,
                course_title=title,
                amount_text=_amount_text(s, order),
                learner=order.recipient,
                mail_from=settings.mail_from,
            )
            if email
            else None
        )
        if claim is None:
            claim = SentReceipt(
                order_ref=order_id,
                kind=kind,
                recipient=email or "",
                subject=str(message["Subject"]) if message else "",
                message_id=receipt_message_id(order_id, kind),
                backend=backend.name,
            )
            s.add(claim)
        claim.claimed_at = now
        if message is None:
            claim.status = "skipped"
            return {"order_id": order_id, "kind": kind, "outcome": "skipped_no_email"}
        # The claim commits (the unique (order, kind) key decides between concurrent first
        # runs) before anything leaves the building.
        return message
