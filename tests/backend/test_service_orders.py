"""The indexer's hand-offs: on-chain purchases, refunds and reorgs, matched to quotes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from support.factories import NATIVE, USDC, account, make_certificate, make_course, tx_hash

from backend.access.models import Entitlement
from backend.audit.models import AuditEntry
from backend.catalog.models import Course, TokenPrice
from backend.catalog.service import link_onchain_course, mirror_course_update, mirror_price
from backend.certificates.models import RevokeReason
from backend.core.db import utcnow
from backend.orders import service
from backend.orders.models import Order, OrderStatus
from backend.outbox.models import OutboxMessage

PROVIDER = account("provider")
BUYER = account("buyer")
FRIEND = account("friend")
BLOCK_A = tx_hash(1001)
BLOCK_B = tx_hash(1002)


C, OTHER_CHAIN = 31337, 31338


def _course(session: Session) -> Course:
    return make_course(session, provider=PROVIDER.address, onchain_id=11, prices={NATIVE: 1000})


def _purchase(session: Session, **overrides: Any) -> Order:
    values: dict[str, Any] = {
        "chain_id": 31337,
        "tx_hash": tx_hash(1),
        "log_index": 0,
        "block_hash": BLOCK_A,
        "block_number": 100,
        "course_onchain_id": 11,
        "buyer": BUYER.address,
        "recipient": BUYER.address,
        "token": NATIVE,
        "amount": 1000,
        "fee": 50,
        "order_ref": "0x" + "00" * 32,
        "confirmed": False,
    }
    values.update(overrides)
    return service.record_crypto_purchase(session, **values)


def _active(session: Session, address: str) -> list[Entitlement]:
    return list(
        session.scalars(
            select(Entitlement).where(
                Entitlement.address == address, Entitlement.revoked_at.is_(None)
            )
        )
    )


def _quote(session: Session, course: Course, recipient: str | None = None) -> Order:
    return service.create_crypto_quote(
        session,
        course=course,
        chain_id=C,
        buyer=BUYER.address,
        token=NATIVE,
        recipient=recipient or BUYER.address,
    )


def test_purchase_matching_its_quote_pays_the_order_and_grants_access(
    sync_session: Session,
) -> None:
    course = _course(sync_session)
    quote = _quote(sync_session, course)
    order = _purchase(sync_session, order_ref=quote.order_ref)
    assert order.id == quote.id
    assert order.status == OrderStatus.PAID and order.anomalies == []
    assert order.fee == 50 and order.tx_hash == tx_hash(1)
    [entitlement] = _active(sync_session, BUYER.address)
    assert entitlement.order_id == order.id and entitlement.source == "crypto"


def test_purchase_without_a_quote_creates_the_order(sync_session: Session) -> None:
    course = _course(sync_session)
    order = _purchase(sync_session)
    assert order.course_id == course.id and order.status == OrderStatus.PAID
    assert order.anomalies == []
    assert len(_active(sync_session, BUYER.address)) == 1


def test_differences_from_the_quote_are_kept_flagged_and_audited(sync_session: Session) -> None:
    course = _course(sync_session)
    quote = _quote(sync_session, course)
    quote.expires_at = utcnow() - timedelta(minutes=1)
    order = _purchase(
        sync_session,
        order_ref=quote.order_ref,
        amount=900,
        token=USDC,
        recipient=FRIEND.address,
    )
    fields = {a["field"] for a in order.anomalies}
    assert fields == {"amount", "token", "recipient", "quote"}
    assert order.amount == 900 and order.token == USDC and order.recipient == FRIEND.address
    assert len(_active(sync_session, FRIEND.address)) == 1
    assert _active(sync_session, BUYER.address) == []
    audit = sync_session.scalars(select(AuditEntry).where(AuditEntry.action == "order.paid")).one()
    assert audit.reason is not None and "anomalies" in audit.reason
    assert audit.before is not None and audit.before["amount"] == "1000"


def test_reused_or_unknown_order_ref_still_records_the_payment(sync_session: Session) -> None:
    course = _course(sync_session)
    quote = _quote(sync_session, course)
    first = _purchase(sync_session, order_ref=quote.order_ref)
    second = _purchase(
        sync_session, order_ref=quote.order_ref, tx_hash=tx_hash(2), recipient=FRIEND.address
    )
    unknown = _purchase(
        sync_session, order_ref="0x" + "ab" * 32, tx_hash=tx_hash(3), recipient=PROVIDER.address
    )
    assert second.id != first.id and second.anomalies[0]["field"] == "order_ref"
    assert unknown.anomalies[0]["field"] == "order_ref"
    assert len({first.order_ref, second.order_ref, unknown.order_ref}) == 3


def test_same_log_twice_is_idempotent_and_confirmation_is_recorded(sync_session: Session) -> None:
    _course(sync_session)
    first = _purchase(sync_session)
    again = _purchase(sync_session, confirmed=True)
    assert again.id == first.id and again.confirmed is True
    assert len(sync_session.scalars(select(Order)).all()) == 1
    assert len(sync_session.scalars(select(Entitlement)).all()) == 1


def test_reorg_revokes_access_and_the_remined_purchase_restores_it(sync_session: Session) -> None:
    _course(sync_session)
    order = _purchase(sync_session)
    reverted = service.revert_crypto_purchase(
        sync_session, chain_id=31337, tx_hash=tx_hash(1), log_index=0, block_hash=BLOCK_A
    )
    assert reverted is not None and reverted.status == OrderStatus.REVERTED
    assert _active(sync_session, BUYER.address) == []
    remined = _purchase(sync_session, block_hash=BLOCK_B, block_number=101, log_index=3)
    assert remined.id == order.id and remined.status == OrderStatus.PAID
    assert remined.block_hash == BLOCK_B and remined.log_index == 3
    assert len(_active(sync_session, BUYER.address)) == 1


def test_reorg_of_the_old_block_after_the_purchase_reappeared_is_a_noop(
    sync_session: Session,
) -> None:
    _course(sync_session)
    _purchase(sync_session)
    _purchase(sync_session, block_hash=BLOCK_B, block_number=101)  # same log, new block
    result = service.revert_crypto_purchase(
        sync_session, chain_id=31337, tx_hash=tx_hash(1), log_index=0, block_hash=BLOCK_A
    )
    assert result is None
    assert len(_active(sync_session, BUYER.address)) == 1


def test_revert_of_an_unknown_purchase_is_a_noop(sync_session: Session) -> None:
    assert (
        service.revert_crypto_purchase(
            sync_session, chain_id=31337, tx_hash=tx_hash(77), log_index=0, block_hash=BLOCK_A
        )
        is None
    )


def _refund(session: Session, **overrides: Any) -> Order | None:
    values: dict[str, Any] = {
        "chain_id": 31337,
        "tx_hash": tx_hash(500),
        "log_index": 1,
        "block_hash": BLOCK_B,
        "block_number": 120,
        "course_onchain_id": 11,
        "learner": BUYER.address,
        "payer": BUYER.address,
        "token": NATIVE,
        "amount": 1000,
        "by": PROVIDER.address,
    }
    values.update(overrides)
    return service.record_crypto_refund(session, **values)


def test_onchain_refund_revokes_access_once(sync_session: Session) -> None:
    _course(sync_session)
    order = _purchase(sync_session)
    refunded = _refund(sync_session)
    again = _refund(sync_session)
    assert refunded is not None and refunded.id == order.id
    assert refunded.status == OrderStatus.REFUNDED and again is not None and again.id == order.id
    assert _active(sync_session, BUYER.address) == []
    revokes = sync_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "access.revoke")
    ).all()
    assert len(revokes) == 1


def test_onchain_refund_revokes_the_minted_certificate_as_refunded(sync_session: Session) -> None:
    course = _course(sync_session)
    _purchase(sync_session)
    cert = make_certificate(sync_session, course_id=course.id, address=BUYER.address)
    _refund(sync_session)
    _refund(sync_session)
    sync_session.refresh(cert)
    assert cert.status == "minted", "the indexer marks it revoked once the chain says so"
    assert cert.revoke_reason_code == RevokeReason.REFUNDED and cert.revoke_requested_at
    messages = sync_session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "certificate.revoke")
    ).all()
    assert [m.payload for m in messages] == [{"certificateId": cert.id, "reasonCode": 5}]


def test_reorged_refund_restores_the_purchase(sync_session: Session) -> None:
    _course(sync_session)
    _purchase(sync_session)
    _refund(sync_session)
    order = service.revert_crypto_refund(
        sync_session, chain_id=31337, tx_hash=tx_hash(500), log_index=1, block_hash=BLOCK_B
    )
    assert order is not None and order.status == OrderStatus.PAID
    assert len(_active(sync_session, BUYER.address)) == 1


def test_unmatched_refund_is_audited_and_revokes_crypto_access(sync_session: Session) -> None:
    _course(sync_session)
    _purchase(sync_session)
    assert _refund(sync_session, payer=FRIEND.address) is None
    assert _active(sync_session, BUYER.address) == []
    actions = sync_session.scalars(select(AuditEntry.action)).all()
    assert "order.refund_unmatched" in actions


def test_purchase_of_an_unlinked_course_raises_a_clear_error(sync_session: Session) -> None:
    with pytest.raises(service.UnknownOnchainCourseError):
        _purchase(sync_session, course_onchain_id=999)


def test_hashes_may_be_bytes_and_are_normalized(sync_session: Session) -> None:
    _course(sync_session)
    order = _purchase(
        sync_session,
        tx_hash=bytes.fromhex(tx_hash(9)[2:]),
        block_hash=bytes.fromhex(BLOCK_A[2:]),
        order_ref=bytes(32),
    )
    assert order.tx_hash == tx_hash(9)
    with pytest.raises(Exception, match="32 bytes"):
        _purchase(sync_session, tx_hash="0x1234")


def test_quote_rules(sync_session: Session) -> None:
    draft = make_course(sync_session, provider=PROVIDER.address, status="draft", onchain_id=12)
    offchain = make_course(sync_session, provider=PROVIDER.address)
    course = _course(sync_session)
    with pytest.raises(Exception, match="not for sale"):
        _quote(sync_session, draft)
    with pytest.raises(Exception, match="not registered on chain 31337"):
        _quote(sync_session, offchain)
    with pytest.raises(Exception, match="cannot be bought with token"):
        service.create_crypto_quote(
            sync_session,
            course=course,
            chain_id=C,
            buyer=BUYER.address,
            token=USDC,
            recipient=BUYER.address,
        )
    quote = _quote(sync_session, course)
    assert quote.amount == 1000 and quote.expires_at is not None
    assert quote.expires_at - utcnow() > timedelta(minutes=29)
    _purchase(sync_session, order_ref=quote.order_ref)
    with pytest.raises(Exception, match="already has access"):
        _quote(sync_session, course)


def test_stale_pending_orders_expire(sync_session: Session) -> None:
    course = _course(sync_session)
    quote = _quote(sync_session, course)
    assert service.expire_stale_orders(sync_session) == 0
    assert service.expire_stale_orders(sync_session, now=utcnow() + timedelta(hours=1)) == 1
    assert quote.status == OrderStatus.EXPIRED


def test_course_created_takes_a_squatted_link_back_for_its_provider(
    sync_session: Session,
) -> None:
    """A link made before the chain said whose the id is (old data, or a race) is removed when
    CourseCreated names another provider, and the real provider's draft is linked."""
    squatter = make_course(sync_session, provider=FRIEND.address, title="Mine", onchain_id=31)
    sync_session.add(
        TokenPrice(course_id=squatter.id, chain_id=C, token=NATIVE, price=1, accepted=True)
    )
    real = make_course(sync_session, provider=PROVIDER.address, title="Rust", status="draft")
    linked = link_onchain_course(sync_session, C, PROVIDER.address, "Rust", 31, block_number=7)
    assert linked.id == real.id and real.onchain_id_on(C) == 31
    assert squatter.chains == []
    prices = sync_session.scalars(select(TokenPrice).where(TokenPrice.course_id == squatter.id))
    assert prices.all() == []
    (entry,) = sync_session.scalars(
        select(AuditEntry).where(AuditEntry.action == "course.unlink_onchain")
    ).all()
    assert entry.subject_id == str(squatter.id) and entry.before["onchain"] == {str(C): 31}


def test_mismatched_links_are_found_and_can_be_removed(sync_session: Session) -> None:
    from backend.catalog.service import mismatched_links, unlink_onchain

    good = make_course(sync_session, provider=PROVIDER.address, onchain_id=41)
    squatted = make_course(sync_session, provider=FRIEND.address, onchain_id=42)
    future = make_course(sync_session, provider=FRIEND.address, onchain_id=43)
    chain = {41: PROVIDER.address, 42: PROVIDER.address}
    found = mismatched_links(sync_session, C, chain.get)
    assert [(c.id, onchain_id, who) for c, onchain_id, who in found] == [
        (squatted.id, 42, PROVIDER.address),
        (future.id, 43, None),
    ]
    assert mismatched_links(sync_session, OTHER_CHAIN, chain.get) == []  # nothing linked there
    for course, _, _ in found:
        unlink_onchain(sync_session, course, C, actor="test", reason="repair")
    assert mismatched_links(sync_session, C, chain.get) == []
    assert good.onchain_id_on(C) == 41


def test_indexer_links_the_providers_draft_and_mirrors_prices(sync_session: Session) -> None:
    draft = make_course(sync_session, provider=PROVIDER.address, title="ZK", status="draft")
    other = make_course(sync_session, provider=FRIEND.address, title="ZK", status="draft")
    linked = link_onchain_course(
        sync_session, C, PROVIDER.address.lower(), "ZK", 21, refund_window=60, block_number=5
    )
    assert linked.id == draft.id and linked.onchain_id_on(C) == 21 and other.chains == []
    assert link_onchain_course(sync_session, C, PROVIDER.address, "ZK", 21).id == draft.id
    created = link_onchain_course(sync_session, C, FRIEND.address, "Direct", 22)
    assert created.onchain_id_on(C) == 22 and created.status == "draft"

    price = mirror_price(
        sync_session,
        chain_id=C,
        course_onchain_id=21,
        token=NATIVE,
        price=5,
        accepted=True,
        block_number=10,
    )
    stale = mirror_price(
        sync_session,
        chain_id=C,
        course_onchain_id=21,
        token=NATIVE,
        price=9,
        accepted=True,
        block_number=9,
    )
    assert price is stale and price is not None and price.price == 5
    assert (
        mirror_price(
            sync_session,
            chain_id=C,
            course_onchain_id=99,
            token=NATIVE,
            price=1,
            accepted=True,
            block_number=1,
        )
        is None
    )
    updated = mirror_course_update(
        sync_session, chain_id=C, onchain_id=21, listed=False, refund_window=120, block_number=11
    )
    assert updated is not None and updated.registration(C).listed is False  # type: ignore[union-attr]
    assert updated.refund_window == 120


# ------------------------------------------------------------------ several chains


def _course_on_both_chains(session: Session) -> Course:
    """One course registered with the SAME on-chain id (11) on two chains."""
    course = _course(session)
    link_onchain_course(session, OTHER_CHAIN, PROVIDER.address, course.title, 11, block_number=3)
    return course


def test_the_same_onchain_id_on_two_chains_links_each_chain_separately(
    sync_session: Session,
) -> None:
    course = _course_on_both_chains(sync_session)
    stranger = link_onchain_course(sync_session, OTHER_CHAIN, FRIEND.address, "Theirs", 12)

    assert {r.chain_id: r.onchain_id for r in course.chains} == {C: 11, OTHER_CHAIN: 11}
    assert stranger.id != course.id and stranger.chains[0].chain_id == OTHER_CHAIN
    # Chain C's id 12 is nobody's: the other chain's id 12 says nothing about it.
    from backend.catalog.service import course_by_onchain_id

    assert course_by_onchain_id(sync_session, C, 12) is None
    assert course_by_onchain_id(sync_session, OTHER_CHAIN, 12) is stranger


def test_purchases_on_two_chains_give_one_entitlement_and_a_refund_revokes_only_its_chains(
    sync_session: Session,
) -> None:
    _course_on_both_chains(sync_session)
    on_a = _purchase(sync_session)
    # Same transaction hash and log index on the other chain: a different purchase.
    on_b = _purchase(sync_session, chain_id=OTHER_CHAIN, block_hash=BLOCK_B)

    assert on_a.id != on_b.id and {on_a.chain_id, on_b.chain_id} == {C, OTHER_CHAIN}
    (entitlement,) = _active(sync_session, BUYER.address)
    assert entitlement.order_id == on_a.id

    refunded = _refund(sync_session)  # chain C's refund
    assert refunded is not None and refunded.id == on_a.id
    (still,) = _active(sync_session, BUYER.address)
    assert still.order_id == on_b.id, "chain B's purchase still pays for access"

    _refund(sync_session, chain_id=OTHER_CHAIN)
    assert _active(sync_session, BUYER.address) == []


def test_a_quote_for_one_chain_is_not_settled_by_a_purchase_on_another(
    sync_session: Session,
) -> None:
    course = _course_on_both_chains(sync_session)
    quote = _quote(sync_session, course)
    assert quote.chain_id == C

    paid = _purchase(sync_session, chain_id=OTHER_CHAIN, order_ref=quote.order_ref)

    assert paid.id != quote.id and paid.chain_id == OTHER_CHAIN
    assert quote.status == OrderStatus.PENDING
    assert paid.anomalies[0]["field"] == "order_ref"
