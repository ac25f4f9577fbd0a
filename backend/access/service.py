"""THE grant/revoke pair of every rail (card, crypto, free claim, admin grant).

Both take a sync `Session` (the indexer and the worker call them directly; the API through
`AsyncSession.run_sync`), write the audit log in the same transaction, and are idempotent:
granting for an order that already has the active entitlement returns it, revoking what is not
active does nothing. At most one active entitlement per (address, course) is enforced by a partial
unique index; a concurrent duplicate grant hits it inside a SAVEPOINT and returns the winner's row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, Entitlement
from backend.audit.service import record as audit
from backend.core.db import utcnow
from backend.core.errors import InvalidInputError
from backend.core.metrics import ACCESS_CHANGES
from backend.core.security import checksum_address
from backend.orders.models import Order, OrderStatus, Rail

_ORDER_SOURCES = {Rail.CRYPTO: AccessSource.CRYPTO, Rail.CARD: AccessSource.CARD}


def _snapshot(ent: Entitlement) -> dict[str, Any]:
    return {
        "id": ent.id,
        "address": ent.address,
        "courseId": ent.course_id,
        "source": ent.source,
        "orderId": ent.order_id,
        "grantedAt": ent.granted_at.isoformat() if ent.granted_at else None,
        "revokedAt": ent.revoked_at.isoformat() if ent.revoked_at else None,
        "revokeReason": ent.revoke_reason,
    }


def active_entitlement(session: Session, address: str, course_id: int) -> Entitlement | None:
    """The active entitlement of (address, course), locked for update where supported."""
    return session.scalar(
        select(Entitlement)
        .where(
            Entitlement.course_id == course_id,
            Entitlement.address == address,
            Entitlement.revoked_at.is_(None),
        )
        .with_for_update()
    )


def grant_access(
    session: Session,
    *,
    address: str,
    course_id: int,
    source: str,
    order_id: str | None,
    actor: str,
    reason: str,
) -> Entitlement:
    """Give `address` access to `course_id` (idempotent); returns the active entitlement.

    If the address already has access (from this order or another one), no second row is
    written: the existing entitlement is returned, and a grant from a *different* order is
    audited as redundant so the duplicate payment can be reviewed.
    """
    if source not in AccessSource.ALL:
        raise InvalidInputError(f"unknown access source {source!r}")
    address = checksum_address(address)
    existing = active_entitlement(session, address, course_id)
    if existing is not None:
        if order_id is not None and existing.order_id != order_id:
            audit(
                session,
                actor=actor,
                action="access.grant_redundant",
                subject_type="entitlement",
                subject_id=existing.id,
                after={"orderId": order_id, "source": source},
                reason=f"already entitled through {existing.source}; {reason}",
            )
        return existing
    entitlement = Entitlement(
        address=address,
        course_id=course_id,
        source=source,
        order_id=order_id,
        granted_at=utcnow(),
        granted_by=actor[:80],
    )
    try:
        with session.begin_nested():
            session.add(entitlement)
    except IntegrityError:
        # Lost a race with a concurrent grant: the winner's row is the entitlement.
        winner = active_entitlement(session, address, course_id)
        if winner is None:
            raise
        return winner
    audit(
        session,
        actor=actor,
        action="access.grant",
        subject_type="entitlement",
        subject_id=entitlement.id,
        before=None,
        after=_snapshot(entitlement),
        reason=reason,
    )
    ACCESS_CHANGES.labels("grant", source).inc()
    return entitlement


def revoke_access(
    session: Session,
    *,
    address: str,
    course_id: int,
    order_id: str | None,
    actor: str,
    reason: str,
) -> Entitlement | None:
    """Take access away (idempotent); returns the entitlement revoked, or None if nothing was.

    With `order_id`, only an entitlement that came from that order is revoked (refunding one of
    two payments must not remove access the other one pays for); if another settled order of the
    same learner still pays for the course, access is re-granted from it. Without `order_id`
    (admin), whatever is active is revoked.
    """
    address = checksum_address(address)
    active = active_entitlement(session, address, course_id)
    if active is None:
        return None
    if order_id is not None and active.order_id != order_id:
        return None
    before = _snapshot(active)
    active.revoked_at = utcnow()
    active.revoke_reason = reason[:200]
    active.revoked_by = actor[:80]
    session.flush()
    audit(
        session,
        actor=actor,
        action="access.revoke",
        subject_type="entitlement",
        subject_id=active.id,
        before=before,
        after=_snapshot(active),
        reason=reason,
    )
    ACCESS_CHANGES.labels("revoke", active.source).inc()
    if order_id is not None:
        _regrant_from_other_order(session, address, course_id, order_id, actor)
    return active


def _regrant_from_other_order(
    session: Session, address: str, course_id: int, revoked_order_id: str, actor: str
) -> None:
    other = session.scalar(
        select(Order)
        .where(
            Order.recipient == address,
            Order.course_id == course_id,
            Order.status == OrderStatus.PAID,
            Order.id != revoked_order_id,
        )
        .order_by(Order.paid_at)
        .limit(1)
    )
    if other is not None:
        grant_access(
            session,
            address=address,
            course_id=course_id,
            source=_ORDER_SOURCES[other.rail],
            order_id=other.id,
            actor=actor,
            reason=f"still paid by order {other.id} after order {revoked_order_id} ended",
        )


def source_for_rail(rail: str) -> str:
    """The entitlement source of an order paid on `rail`."""
    return _ORDER_SOURCES[rail]
