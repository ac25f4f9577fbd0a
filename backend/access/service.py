"""THE grant/revoke pair of every rail (card, crypto, free claim, admin grant).

Both take a sync `Session` (the indexer and the worker call them directly; the API through
`AsyncSession.run_sync`), write the audit log in the same transaction, and are idempotent:
granting for an order that already has the active entitlement returns it, revoking what is not
active does nothing. At most one active entitlement per (address, course) is enforced by a partial
unique index; a concurrent duplicate grant hits it inside a SAVEPOINT and returns the winner's row.

Every grant and revoke also ends on-chain (`CourseMarket.hasAccess`), through one path: the
database answers at once, and unless the change came from the chain (`on_chain=True`: purchases,
refunds, reorgs and operator events the indexer applies) an outbox message in the same
transaction has the worker send `grantAccess`/`revokeAccess`. The entitlement's `chain_status`
says where that stands; the reconciler repairs drift in both directions.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, ChainStatus, Entitlement
from backend.audit.service import record as audit
from backend.core.db import utcnow
from backend.core.errors import ConflictError, InvalidInputError
from backend.core.metrics import ACCESS_CHANGES
from backend.core.security import checksum_address
from backend.orders.models import Order, OrderStatus, Rail
from backend.outbox.service import Topics, enqueue

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
        "chainStatus": ent.chain_status,
    }


def entitlement_ref(entitlement_id: int) -> str:
    """The bytes32 `ref` (0x hex) recorded on-chain for a grant that has no order."""
    return "0x" + keccak(text=f"tuition:entitlement:{entitlement_id}").hex()


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
    on_chain: bool,
    chain_ref: str | None = None,
) -> Entitlement:
    """Give `address` access to `course_id` (idempotent); returns the active entitlement.

    If the address already has access (from this order or another one), no second row is
    written: the existing entitlement is returned, and a grant from a *different* order is
    audited as redundant so the duplicate payment can be reviewed.

    Args:
        on_chain: The chain already holds this access (an event the indexer applies); else
            the worker records it with `grantAccess` (crypto purchases are always on-chain).
        chain_ref: The on-chain `ref` of a grant adopted from the chain (0x hex).
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
    recorded = on_chain or source == AccessSource.CRYPTO
    now = utcnow()
    entitlement = Entitlement(
        address=address,
        course_id=course_id,
        source=source,
        order_id=order_id,
        granted_at=now,
        granted_by=actor[:80],
        chain_status=ChainStatus.RECORDED if recorded else ChainStatus.PENDING,
        chain_ref=chain_ref,
        chain_updated_at=now,
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
    if not recorded:
        entitlement.chain_ref = _chain_ref_for(session, entitlement)
        enqueue(
            session,
            Topics.ACCESS_GRANT,
            {"entitlementId": entitlement.id},
            dedupe_key=f"{Topics.ACCESS_GRANT}:{entitlement.id}",
        )
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
    on_chain: bool,
    certificate_reason: int | None = None,
) -> Entitlement | None:
    """Take access away (idempotent); returns the entitlement revoked, or None if nothing was.

    With `order_id`, only an entitlement that came from that order is revoked (refunding one of
    two payments must not remove access the other one pays for); if another settled order of the
    same learner still pays for the course, access is re-granted from it. Without `order_id`
    (admin), whatever is active is revoked.

    Args:
        on_chain: The chain already took the access away (an event the indexer applies); else
            the worker sends `revokeAccess` for card, free and granted access.
        certificate_reason: A refund or a lost dispute (RevokeReason.REFUNDED / DISPUTED): the
            learner's certificate of the course, if minted, is revoked with that code once no
            access is left.

    Raises:
        ConflictError: an off-chain revoke of an on-chain purchase (only a refund undoes one).
    """
    address = checksum_address(address)
    active = active_entitlement(session, address, course_id)
    if active is None:
        return None
    if order_id is not None and active.order_id != order_id:
        return None
    if not on_chain and active.source == AccessSource.CRYPTO:
        raise ConflictError(
            "this access was bought on-chain: refund the purchase to take it away",
            code="purchase_needs_refund",
        )
    before = _snapshot(active)
    now = utcnow()
    active.revoked_at = now
    active.revoke_reason = reason[:200]
    active.revoked_by = actor[:80]
    active.chain_updated_at = now
    if on_chain or (active.chain_status == ChainStatus.FAILED and active.chain_tx_hash is None):
        # Nothing of this entitlement is (or was ever sent) on-chain.
        active.chain_status = ChainStatus.REVOKED
    else:
        active.chain_status = ChainStatus.REVOKE_PENDING
    session.flush()
    if active.chain_status == ChainStatus.REVOKE_PENDING:
        enqueue(
            session,
            Topics.ACCESS_REVOKE,
            {"entitlementId": active.id},
            dedupe_key=f"{Topics.ACCESS_REVOKE}:{active.id}",
        )
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
    still = None
    if order_id is not None:
        still = _regrant_from_other_order(session, address, course_id, order_id, actor)
    if certificate_reason is not None and still is None:
        from backend.certificates.service import revoke_for_lost_access

        revoke_for_lost_access(
            session,
            course_id=course_id,
            address=address,
            reason_code=certificate_reason,
            reason=reason,
            actor=actor,
        )
    return active


def _chain_ref_for(session: Session, entitlement: Entitlement) -> str:
    """The `ref` the worker records on-chain: the order's reference, else the entitlement's."""
    if entitlement.order_id is not None:
        order_ref = session.scalar(select(Order.order_ref).where(Order.id == entitlement.order_id))
        if order_ref:
            return order_ref
    return entitlement_ref(entitlement.id)


def _regrant_from_other_order(
    session: Session, address: str, course_id: int, revoked_order_id: str, actor: str
) -> Entitlement | None:
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
    if other is None:
        return None
    return grant_access(
        session,
        address=address,
        course_id=course_id,
        source=_ORDER_SOURCES[other.rail],
        order_id=other.id,
        actor=actor,
        reason=f"still paid by order {other.id} after order {revoked_order_id} ended",
        # A crypto order's access is on-chain already; a card order's is recorded again.
        on_chain=other.rail == Rail.CRYPTO,
    )


def source_for_rail(rail: str) -> str:
    """The entitlement source of an order paid on `rail`."""
    return _ORDER_SOURCES[rail]
