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
from typing import Any, NamedTuple

from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, ChainStatus, Entitlement
from backend.audit.service import record as audit
from backend.audit.service import row as audit_row
from backend.catalog.models import CourseStatus
from backend.catalog.service import get_course
from backend.core.db import utcnow
from backend.core.errors import ConflictError, InvalidInputError, NotFoundError
from backend.core.metrics import ACCESS_CHANGES
from backend.core.security import checksum_address
from backend.outbox.service import Topics, enqueue


def _snapshot(ent: Entitlement | EntitlementRow) -> dict[str, Any]:
    # The audited state of an entitlement (the ORM path and the bulk path write the same).
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
    chain_id: int | None = None,
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
        chain_id: The chain that holds the record (required with `on_chain` and for crypto
            purchases); the worker sets it for the records it writes.
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
    if recorded and chain_id is None:
        raise InvalidInputError("access held on-chain needs the chain that holds it")
    now = utcnow()
    entitlement = Entitlement(
        address=address,
        course_id=course_id,
        source=source,
        order_id=order_id,
        granted_at=now,
        granted_by=actor[:80],
        chain_status=ChainStatus.RECORDED if recorded else ChainStatus.PENDING,
        chain_id=chain_id if recorded else None,
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


# ------------------------------------------------------------------ grants without payment


def claim_free_course(session: Session, *, address: str, course_id: int) -> Entitlement:
    """Access to a published course whose card price is 0 (idempotent); recorded on-chain by the
    worker (source Grant).

    Raises:
        NotFoundError: no published course with this id.
        ConflictError: the course is not free (`not_free`).
    """
    course = get_course(session, course_id)
    if course.status != CourseStatus.PUBLISHED:
        raise NotFoundError(f"course {course_id} does not exist", code="course_not_found")
    if course.fiat_price != 0:
        raise ConflictError("this course is not free", code="not_free")
    return grant_access(
        session,
        address=address,
        course_id=course.id,
        source=AccessSource.FREE,
        order_id=None,
        actor=f"user:{address}",
        reason="free course claimed",
        on_chain=False,
    )


def admin_grant(
    session: Session, *, admin: str, address: str, course_id: int, reason: str
) -> Entitlement:
    """An admin's grant without payment (scholarship, support case); idempotent."""
    get_course(session, course_id)
    return grant_access(
        session,
        address=address,
        course_id=course_id,
        source=AccessSource.GRANT,
        order_id=None,
        actor=f"admin:{admin}",
        reason=reason,
        on_chain=False,
    )


def admin_revoke(
    session: Session, *, admin: str, address: str, course_id: int, reason: str
) -> Entitlement:
    """An admin's revoke of whatever access is active.

    Raises:
        NotFoundError: no such course, or no active access (`no_active_access`).
        ConflictError: access bought on-chain (`purchase_needs_refund`).
    """
    get_course(session, course_id)
    revoked = revoke_access(
        session,
        address=address,
        course_id=course_id,
        order_id=None,
        actor=f"admin:{admin}",
        reason=reason,
        on_chain=False,
    )
    if revoked is None:
        raise NotFoundError("no active access to revoke", code="no_active_access")
    return revoked


class EntitlementRow(NamedTuple):
    """An entitlement's values in insert order, for `OnChainGrants`; it has every attribute
    `_snapshot` reads."""

    id: int
    address: str
    course_id: int
    source: str
    order_id: str | None
    granted_at: datetime
    granted_by: str
    chain_status: str
    chain_id: int
    chain_updated_at: datetime

    # A new grant: its revoke columns stay NULL.
    @property
    def revoked_at(self) -> None:
        """Not revoked."""
        return None

    @property
    def revoke_reason(self) -> None:
        """Not revoked."""
        return None


class OnChainGrants:
    """Grants the chain already holds, as rows for a bulk insert (the indexer's backfill).

    The same entitlement row and `access.grant` audit entry that `grant_access(on_chain=True)`
    writes, without its per-row queries: the caller has established what `grant_access` would
    check (no active entitlement of the pair, each pair once in the batch). Call `counted` once
    the rows are written.
    """

    COLUMNS = EntitlementRow._fields

    def __init__(
        self,
        *,
        source: str,
        actor: str,
        now: datetime,
        request_id: str | None,
        chain_id: int,
    ) -> None:
        self.source = source
        self.chain_id = chain_id
        self.actor = actor[:80]
        self.now = now
        self.request_id = request_id
        # A batch's snapshots differ only in the row's own ids: `_snapshot` runs once, on a
        # prototype, and each row copies it (a backfill writes tens of thousands per second).
        self._snapshot = _snapshot(self.row(0, "", 0, None))

    def row(
        self, entitlement_id: int, address: str, course_id: int, order_id: str | None
    ) -> EntitlementRow:
        """The entitlement, in `COLUMNS` order."""
        now = self.now
        return EntitlementRow(
            entitlement_id, address, course_id, self.source, order_id, now, self.actor,
            ChainStatus.RECORDED, self.chain_id, now,
        )  # fmt: skip

    def audit_row(self, row: EntitlementRow, *, reason: str) -> tuple[Any, ...]:
        """The grant's audit entry, in `backend.audit.service.COLUMNS` order."""
        return audit_row(
            at=self.now,
            actor=self.actor,
            action="access.grant",
            subject_type="entitlement",
            subject_id=row.id,
            before=None,
            after={
                **self._snapshot,
                "id": row.id,
                "address": row.address,
                "courseId": row.course_id,
                "orderId": row.order_id,
            },
            reason=reason,
            request_id=self.request_id,
        )

    def counted(self, n: int) -> None:
        """Count `n` written grants in the access metric."""
        ACCESS_CHANGES.labels("grant", self.source).inc(n)
