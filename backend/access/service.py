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

from datetime import datetime
from typing import Any

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, ChainStatus, Entitlement
from backend.audit.service import record as audit
from backend.audit.service import row as audit_row
from backend.core.db import utcnow
from backend.core.errors import ConflictError, InvalidInputError
from backend.core.metrics import ACCESS_CHANGES
from backend.core.security import checksum_address
from backend.outbox.service import Topics, enqueue


def _snapshot(ent: Entitlement) -> dict[str, Any]:
    return _snapshot_of(
        entitlement_id=ent.id,
        address=ent.address,
        course_id=ent.course_id,
        source=ent.source,
        order_id=ent.order_id,
        granted_at=ent.granted_at.isoformat() if ent.granted_at else None,
        revoked_at=ent.revoked_at.isoformat() if ent.revoked_at else None,
        revoke_reason=ent.revoke_reason,
        chain_status=ent.chain_status,
    )


def _snapshot_of(
    *,
    entitlement_id: int,
    address: str,
    course_id: int,
    source: str,
    order_id: str | None,
    granted_at: str | None,
    revoked_at: str | None,
    revoke_reason: str | None,
    chain_status: str,
) -> dict[str, Any]:
    # The audited state of an entitlement (the ORM path and the bulk path write the same).
    return {
        "id": entitlement_id,
        "address": address,
        "courseId": course_id,
        "source": source,
        "orderId": order_id,
        "grantedAt": granted_at,
        "revokedAt": revoked_at,
        "revokeReason": revoke_reason,
        "chainStatus": chain_status,
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
        chain_ref: The on-chain `ref` (0x hex) of a grant adopted from the chain, or the one
            the worker records (an order's reference); by default the row's own.
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
        # The record the worker writes on-chain: the order's reference, else the row's own.
        entitlement.chain_ref = chain_ref or entitlement_ref(entitlement.id)
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
) -> Entitlement | None:
    """Take access away (idempotent); returns the entitlement revoked, or None if nothing was.

    With `order_id`, only an entitlement that came from that order is revoked (an order that
    ends goes through `backend.orders.service.end_order_access`, which also grants access again
    from another paid order). Without `order_id` (admin), whatever is active is revoked.

    Args:
        on_chain: The chain already took the access away (an event the indexer applies); else
            the worker sends `revokeAccess` for card, free and granted access.

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
    return active


class OnChainGrants:
    """Grants the chain already holds, as rows for a bulk insert (the indexer's backfill).

    The same entitlement row and `access.grant` audit entry that `grant_access(on_chain=True)`
    writes, without its per-row queries: the caller has established what `grant_access` would
    check (no active entitlement of the pair, each pair once in the batch). Call `counted` once
    the rows are written.
    """

    COLUMNS = (
        "id", "address", "course_id", "source", "order_id", "granted_at", "granted_by",
        "chain_status", "chain_updated_at",
    )  # fmt: skip

    def __init__(self, *, source: str, actor: str, now: datetime, request_id: str | None) -> None:
        self.source = source
        self.actor = actor[:80]
        self.now = now
        self.now_iso = now.isoformat()
        self.request_id = request_id

    def row(
        self, entitlement_id: int, address: str, course_id: int, order_id: str | None
    ) -> tuple[Any, ...]:
        """The entitlement's values in `COLUMNS` order."""
        return (
            entitlement_id, address, course_id, self.source, order_id, self.now, self.actor,
            ChainStatus.RECORDED, self.now,
        )  # fmt: skip

    def audit_row(
        self,
        entitlement_id: int,
        address: str,
        course_id: int,
        order_id: str | None,
        *,
        reason: str,
    ) -> tuple[Any, ...]:
        """The grant's audit entry in `backend.audit.service.COLUMNS` order."""
        after = _snapshot_of(
            entitlement_id=entitlement_id,
            address=address,
            course_id=course_id,
            source=self.source,
            order_id=order_id,
            granted_at=self.now_iso,
            revoked_at=None,
            revoke_reason=None,
            chain_status=ChainStatus.RECORDED,
        )
        return audit_row(
            at=self.now,
            actor=self.actor,
            action="access.grant",
            subject_type="entitlement",
            subject_id=entitlement_id,
            before=None,
            after=after,
            reason=reason,
            request_id=self.request_id,
        )

    def counted(self, n: int) -> None:
        """Count `n` written grants in the access metric."""
        ACCESS_CHANGES.labels("grant", self.source).inc(n)
