"""grant_access / revoke_access (and an ended order's end_order_access): idempotency,
cross-order rules, races, the audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from support.factories import NATIVE, account, make_course

from backend.access import service
from backend.access.models import AccessSource, Entitlement
from backend.audit.models import AuditEntry
from backend.core.db import utcnow
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.service import end_order_access

PROVIDER = account("provider")
LEARNER = account("learner")


def _paid_order(session: Session, course_id: int, name: str, rail: str = Rail.CRYPTO) -> Order:
    order = Order(
        id=f"order-{name}",
        rail=rail,
        course_id=course_id,
        buyer=LEARNER.address,
        recipient=LEARNER.address,
        amount=100,
        token=NATIVE if rail == Rail.CRYPTO else None,
        currency="usd" if rail == Rail.CARD else None,
        fee=0,
        status=OrderStatus.PAID,
        chain_id=31337 if rail == Rail.CRYPTO else None,
        order_ref="0x" + name.encode().hex().ljust(64, "0"),
        anomalies=[],
        paid_at=utcnow(),
    )
    session.add(order)
    session.flush()
    return order


def _grant(session: Session, course_id: int, order_id: str | None, source: str) -> Entitlement:
    return service.grant_access(
        session,
        address=LEARNER.address,
        course_id=course_id,
        source=source,
        order_id=order_id,
        actor="test",
        reason="test",
        on_chain=False,
        chain_id=31337,  # a crypto purchase's chain (unused for the other sources)
    )


def _active(session: Session, course_id: int) -> list[Entitlement]:
    return list(
        session.scalars(
            select(Entitlement).where(
                Entitlement.course_id == course_id, Entitlement.revoked_at.is_(None)
            )
        )
    )


def test_granting_twice_for_the_same_order_writes_one_row_and_one_audit_entry(
    sync_session: Session,
) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    order = _paid_order(sync_session, course.id, "a")
    first = _grant(sync_session, course.id, order.id, AccessSource.CRYPTO)
    second = _grant(sync_session, course.id, order.id, AccessSource.CRYPTO)
    assert first.id == second.id
    assert len(_active(sync_session, course.id)) == 1
    actions = sync_session.scalars(select(AuditEntry.action)).all()
    assert actions == ["access.grant"]


def test_second_order_does_not_create_a_second_active_entitlement_but_is_audited(
    sync_session: Session,
) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    card = _paid_order(sync_session, course.id, "card", Rail.CARD)
    crypto = _paid_order(sync_session, course.id, "crypto")
    first = _grant(sync_session, course.id, card.id, AccessSource.CARD)
    second = _grant(sync_session, course.id, crypto.id, AccessSource.CRYPTO)
    assert second.id == first.id and second.source == AccessSource.CARD
    actions = sync_session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["access.grant", "access.grant_redundant"]


def test_revoking_for_another_order_keeps_access(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    order = _paid_order(sync_session, course.id, "a")
    _grant(sync_session, course.id, order.id, AccessSource.CRYPTO)
    revoked = service.revoke_access(
        sync_session,
        address=LEARNER.address,
        course_id=course.id,
        order_id="order-unrelated",
        actor="test",
        reason="refund of something else",
        on_chain=True,
    )
    assert revoked is None
    assert len(_active(sync_session, course.id)) == 1


def test_revoking_one_paid_order_regrants_from_another_paid_order(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    card = _paid_order(sync_session, course.id, "card", Rail.CARD)
    crypto = _paid_order(sync_session, course.id, "crypto")
    _grant(sync_session, course.id, card.id, AccessSource.CARD)
    card.status = OrderStatus.REFUNDED
    end_order_access(
        sync_session,
        address=LEARNER.address,
        course_id=course.id,
        order_id=card.id,
        actor="stripe",
        reason="refunded",
        on_chain=False,
    )
    active = _active(sync_session, course.id)
    assert [(e.order_id, e.source) for e in active] == [(crypto.id, AccessSource.CRYPTO)]


def test_revoke_is_idempotent_and_audited_once(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    _grant(sync_session, course.id, None, AccessSource.GRANT)
    for _ in range(2):
        service.revoke_access(
            sync_session,
            address=LEARNER.address.lower(),
            course_id=course.id,
            order_id=None,
            actor="admin",
            reason="mistake",
            on_chain=False,
        )
    rows = sync_session.scalars(select(Entitlement)).all()
    assert len(rows) == 1 and rows[0].revoke_reason == "mistake"
    revokes = sync_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "access.revoke")
    ).all()
    assert len(revokes) == 1
    assert revokes[0].before["revokedAt"] is None and revokes[0].after["revokedAt"] is not None


def test_regrant_after_revoke_creates_a_new_row_keeping_history(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    first = _grant(sync_session, course.id, None, AccessSource.GRANT)
    service.revoke_access(
        sync_session,
        address=LEARNER.address,
        course_id=course.id,
        order_id=None,
        actor="t",
        reason="r",
        on_chain=False,
    )
    second = _grant(sync_session, course.id, None, AccessSource.GRANT)
    assert second.id != first.id
    assert len(sync_session.scalars(select(Entitlement)).all()) == 2


def test_lost_race_returns_the_winners_entitlement(
    sync_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    winner = _grant(sync_session, course.id, None, AccessSource.GRANT)
    real = service.active_entitlement
    calls = {"n": 0}

    def stale_read(session: Session, address: str, course_id: int) -> Entitlement | None:
        # The first read happens "before" the concurrent grant committed.
        calls["n"] += 1
        return None if calls["n"] == 1 else real(session, address, course_id)

    monkeypatch.setattr(service, "active_entitlement", stale_read)
    result = _grant(sync_session, course.id, None, AccessSource.FREE)
    assert result.id == winner.id
    assert len(_active(sync_session, course.id)) == 1


def test_database_refuses_two_active_entitlements(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    for _ in range(2):
        sync_session.add(
            Entitlement(
                address=LEARNER.address,
                course_id=course.id,
                source=AccessSource.GRANT,
                granted_by="t",
            )
        )
    with pytest.raises(IntegrityError):
        sync_session.flush()


def test_unknown_source_is_refused(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    with pytest.raises(Exception, match="unknown access source"):
        _grant(sync_session, course.id, None, "gift")


def test_audit_log_is_append_only(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address)
    _grant(sync_session, course.id, None, AccessSource.GRANT)
    entry = sync_session.scalars(select(AuditEntry)).one()
    entry.reason = "rewritten"
    with pytest.raises(Exception, match="append-only"), sync_session.begin_nested():
        sync_session.flush()


def test_the_reconciler_of_a_chain_judges_only_the_records_that_chain_holds(
    sync_session: Session,
) -> None:
    """Access bought on chain B is not "missing" on chain A; a mirror no chain holds yet is
    every chain worker's to write."""
    from datetime import timedelta

    from backend.access.reconcile import _batch
    from backend.catalog.service import link_onchain_course

    a, b = 31337, 31338
    course = make_course(sync_session, provider=PROVIDER.address, onchain_id=5, chain_id=a)
    link_onchain_course(sync_session, b, PROVIDER.address, course.title, 5)
    learners = {name: account(name).address for name in ("on-a", "on-b", "card")}
    for name, chain_id in (("on-a", a), ("on-b", b)):
        service.grant_access(
            sync_session,
            address=learners[name],
            course_id=course.id,
            source=AccessSource.CRYPTO,
            order_id=None,
            actor="test",
            reason="indexed purchase",
            on_chain=True,
            chain_id=chain_id,
        )
    service.grant_access(
        sync_session,
        address=learners["card"],
        course_id=course.id,
        source=AccessSource.GRANT,
        order_id=None,
        actor="test",
        reason="scholarship",
        on_chain=False,
    )
    later = utcnow() + timedelta(hours=1)

    judged = {
        chain_id: {row.learner for row in _batch(sync_session, chain_id, 0, 100, later)[0]}
        for chain_id in (a, b)
    }

    assert judged[a] == {learners["on-a"], learners["card"]}
    assert judged[b] == {learners["on-b"], learners["card"]}


def test_on_chain_access_without_its_chain_is_refused(sync_session: Session) -> None:
    course = make_course(sync_session, provider=PROVIDER.address, onchain_id=6)
    with pytest.raises(Exception, match="needs the chain that holds it"):
        service.grant_access(
            sync_session,
            address=account("nochain").address,
            course_id=course.id,
            source=AccessSource.CRYPTO,
            order_id=None,
            actor="test",
            reason="indexed purchase",
            on_chain=True,
        )
