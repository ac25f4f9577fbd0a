"""Events -> the backend's records, through the real services (emitter contracts on anvil)."""

from __future__ import annotations

from sqlalchemy import select
from support.emitter import address
from support.indexer import (
    active_entitlements,
    applied_count,
    backend_sink,
    course_id_of,
    entitlements,
    make_indexer,
    orders,
)

from backend.access.service import entitlement_ref, grant_access, revoke_access
from backend.audit.models import AuditEntry
from backend.catalog.models import Course, CourseStatus, Token, TokenPrice
from backend.catalog.service import prices_for
from backend.certificates.models import Certificate, CertificateStatus
from backend.core.db import session_scope
from backend.orders.models import OrderStatus
from backend.orders.service import create_crypto_quote
from backend.outbox.models import OutboxMessage
from backend.payouts.service import payouts_of
from backend.provider.models import ProviderProfile
from backend.provider.profiles import profile_hash

ZERO = "0x" + "00" * 20
NOREF = "0x" + "00" * 32
PROVIDER = address(0xA11CE)
LEARNER = address(0xB0B)
USDC = address(0xC0C)


def indexer_for(db, anvil, emitter, cert=None, **kw):
    addrs = [emitter.address] + ([cert.address] if cert else [])
    return make_indexer(
        db,
        anvil,
        addrs,
        emitter.deploy_block,
        sink=backend_sink(anvil.chain_id, **kw.pop("sink_kw", {})),
        **kw,
    )


def test_purchase_grants_access_and_refund_revokes(db, anvil, emitter):
    emitter.tx("courseCreated", 7, PROVIDER, 3600, "Rust for Pythonistas")
    emitter.tx("priceSet", 7, ZERO, 10**17, True)
    emitter.tx("priceSet", 7, USDC, 25 * 10**6, True)
    emitter.tx("purchased", 7, LEARNER, LEARNER, ZERO, 10**17, 10**15, NOREF)
    ix = indexer_for(db, anvil, emitter)
    ix.catch_up()
    course = course_id_of(db, 7)
    assert active_entitlements(db) == {(course, LEARNER): 1}
    [order] = orders(db)
    assert order.status == OrderStatus.PAID and order.amount == 10**17 and order.fee == 10**15
    assert order.block_number == anvil.block_number() and order.confirmed is False
    with db.sessions() as s:
        prices = {p.token: (p.price, p.accepted) for p in s.scalars(select(TokenPrice))}
        c = s.get(Course, course)
        assert c.provider == PROVIDER and c.refund_window == 3600
        assert c.registration(anvil.chain_id).listed
    assert prices == {ZERO: (10**17, True), USDC: (25 * 10**6, True)}
    assert [e.chain_status for e in entitlements(db)] == ["recorded"]  # the chain's own fact

    emitter.tx("refunded", 7, LEARNER, LEARNER, ZERO, 10**17, PROVIDER)
    anvil.mine(3)
    ix.catch_up()
    assert active_entitlements(db) == {}
    assert [e.chain_status for e in entitlements(db)] == ["revoked"]
    [order] = orders(db)
    assert order.status == OrderStatus.REFUNDED
    assert order.confirmed is True  # 3 confirmations reached
    assert applied_count(db) == 5


def test_quote_is_matched_and_anomalies_are_kept(db, anvil, emitter):
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Quoted course")
    emitter.tx("priceSet", 1, ZERO, 500, True)
    ix = indexer_for(db, anvil, emitter)
    ix.catch_up()
    with session_scope(db.sessions) as s:
        course = s.get(Course, course_id_of(db, 1))
        course.status = CourseStatus.PUBLISHED
        s.flush()
        quote = create_crypto_quote(
            s,
            course=course,
            chain_id=anvil.chain_id,
            buyer=LEARNER,
            token=ZERO,
            recipient=LEARNER,
        )
        quote_id, ref = quote.id, quote.order_ref
    # Pays less than quoted: still paid (the chain is the truth), flagged.
    emitter.tx("purchased", 1, LEARNER, LEARNER, ZERO, 400, 4, ref)
    ix.catch_up()
    [order] = orders(db)
    assert order.id == quote_id and order.status == OrderStatus.PAID
    assert any(a["field"] == "amount" for a in order.anomalies)
    assert sum(active_entitlements(db).values()) == 1


def test_card_grants_and_revocations_mirror(db, anvil, emitter):
    emitter.tx("courseCreated", 2, PROVIDER, 0, "Card course")
    emitter.tx("accessGranted", 2, LEARNER, 2, "0x" + "11" * 32)
    ix = indexer_for(db, anvil, emitter)
    ix.catch_up()
    course = course_id_of(db, 2)
    assert active_entitlements(db) == {(course, LEARNER): 1}
    [ent] = entitlements(db)
    assert (ent.source, ent.chain_status, ent.chain_ref) == ("card", "recorded", "0x" + "11" * 32)
    emitter.tx("accessRevoked", 2, LEARNER, 2, "0x" + "11" * 32)
    ix.catch_up()
    assert active_entitlements(db) == {}
    assert [e.chain_status for e in entitlements(db)] == ["revoked"]
    with session_scope(db.sessions) as s:  # applied from the chain: nothing to send back
        assert s.scalars(select(OutboxMessage.topic)).all() == []


def _db_grant(db, course: int, source: str = "grant") -> int:
    with session_scope(db.sessions) as s:
        return grant_access(
            s,
            address=LEARNER,
            course_id=course,
            source=source,
            order_id=None,
            actor="test",
            reason="test",
            on_chain=False,
        ).id


def _db_revoke(db, course: int) -> None:
    with session_scope(db.sessions) as s:
        revoke_access(
            s,
            address=LEARNER,
            course_id=course,
            order_id=None,
            actor="test",
            reason="test",
            on_chain=False,
        )


def test_the_workers_grant_of_a_since_revoked_row_is_not_adopted(db, anvil, emitter):
    emitter.tx("courseCreated", 3, PROVIDER, 0, "Granted course")
    ix = indexer_for(db, anvil, emitter)
    ix.catch_up()
    course = course_id_of(db, 3)
    first = _db_grant(db, course)
    _db_revoke(db, course)  # revoked before the worker's grantAccess was indexed
    emitter.tx("accessGranted", 3, LEARNER, 3, entitlement_ref(first))
    ix.catch_up()
    assert active_entitlements(db) == {}, "access that ended must not come back"


def test_the_revoke_of_an_earlier_record_leaves_the_active_entitlement(db, anvil, emitter):
    emitter.tx("courseCreated", 4, PROVIDER, 0, "Claimed again")
    ix = indexer_for(db, anvil, emitter)
    ix.catch_up()
    course = course_id_of(db, 4)
    first = _db_grant(db, course)
    emitter.tx("accessGranted", 4, LEARNER, 3, entitlement_ref(first))
    ix.catch_up()
    _db_revoke(db, course)
    second = _db_grant(db, course)  # granted again before the revoke reached the chain
    emitter.tx("accessRevoked", 4, LEARNER, 3, entitlement_ref(first))
    ix.catch_up()
    assert active_entitlements(db) == {(course, LEARNER): 1}
    assert [e.id for e in entitlements(db) if e.revoked_at is None] == [second]
    # A revoke naming the active record is followed.
    emitter.tx("accessRevoked", 4, LEARNER, 3, entitlement_ref(second))
    ix.catch_up()
    assert active_entitlements(db) == {}


def test_certificates_are_mirrored(db, anvil, emitter, cert_emitter):
    emitter.tx("courseCreated", 3, PROVIDER, 0, "Certified course")
    token_id = (3 << 160) | int(LEARNER, 16)
    cert_emitter.tx("certificateMinted", token_id, LEARNER, 3, PROVIDER, "0x" + "ee" * 28)
    ix = indexer_for(db, anvil, emitter, cert_emitter)
    ix.catch_up()
    with db.sessions() as s:
        [cert] = s.scalars(select(Certificate)).all()
        assert cert.status == CertificateStatus.MINTED and cert.token_id == token_id
        assert cert.record_hash == "0x" + "ee" * 28
    cert_emitter.tx("certificateRevoked", token_id, 4, PROVIDER)
    ix.catch_up()
    with db.sessions() as s:
        [cert] = s.scalars(select(Certificate)).all()
        assert cert.status == CertificateStatus.REVOKED and cert.revoked_at is not None


def test_access_confirmations_defer_the_grant(db, anvil, emitter):
    emitter.tx("courseCreated", 4, PROVIDER, 0, "Slow course")
    emitter.tx("purchased", 4, LEARNER, LEARNER, ZERO, 1, 0, NOREF)
    ix = indexer_for(db, anvil, emitter, sink_kw={"access_confirmations": 2, "confirmations": 4})
    ix.catch_up()
    assert active_entitlements(db) == {}
    anvil.mine(1)
    ix.catch_up()
    assert active_entitlements(db) == {}
    anvil.mine(1)
    ix.catch_up()
    assert active_entitlements(db) == {(course_id_of(db, 4), LEARNER): 1}
    anvil.mine(2)
    ix.catch_up()
    assert orders(db)[0].confirmed is True


def test_payouts_allowlist_and_configuration_are_recorded_then_undone_by_a_reorg(
    db, anvil, emitter, cert_emitter
):
    with session_scope(db.sessions) as s:
        s.add(
            Token(chain_id=anvil.chain_id, address=USDC, symbol="USDC", decimals=6, name="USD Coin")
        )
    emitter.tx("courseCreated", 5, PROVIDER, 0, "Paid out course")
    emitter.tx("priceSet", 5, USDC, 25 * 10**6, True)
    ix = indexer_for(db, anvil, emitter, cert_emitter, reorg_window=16)
    ix.catch_up()
    course = course_id_of(db, 5)
    before_changes = anvil.block_number()

    big = 10**30  # beyond 2**63
    emitter.tx("released", PROVIDER, USDC, big, 10)
    emitter.tx("withdrawn", PROVIDER, USDC, big)
    emitter.tx("tokenAllowed", USDC, False)
    emitter.tx("feeChanged", 100, 250)
    emitter.tx("delegateSet", PROVIDER, LEARNER, True)
    cert_emitter.tx("issuerSet", PROVIDER, LEARNER, True)
    ix.catch_up()

    with db.sessions() as s:
        ledger = [(p.kind, p.account, p.token, p.amount, p.fee) for p in payouts_of(s, PROVIDER)]
        assert ledger == [
            ("withdrawn", PROVIDER, USDC, big, 0),
            ("released", PROVIDER, USDC, big, 10),
        ]
        assert s.get(Token, (anvil.chain_id, USDC)).allowed is False
        assert prices_for(s, [course], anvil.chain_id) == {course: []}  # USDC is no longer offered
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "indexer")).all()
        assert {
            "market.token_allowed",
            "market.fee_changed",
            "market.delegate_set",
            "certificate.issuer_set",
        } <= set(actions)
        [fee] = s.scalars(select(AuditEntry).where(AuditEntry.action == "market.fee_changed"))
        assert fee.after == {"previousBps": 100, "newBps": 250}

    # The chain drops every change: the ledger empties, the allowlist is restored, and each
    # configuration change gets its compensating entry.
    anvil.rpc("anvil_reorg", anvil.block_number() - before_changes, [])
    ix.catch_up()
    assert ix.reorgs == 1
    with db.sessions() as s:
        assert payouts_of(s, PROVIDER) == []
        assert s.get(Token, (anvil.chain_id, USDC)).allowed is True
        assert [p.token for p in prices_for(s, [course], anvil.chain_id)[course]] == [USDC]
        reverted = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("%.reverted"))
        ).all()
        assert sorted(reverted) == [
            "certificate.issuer_set.reverted",
            "market.delegate_set.reverted",
            "market.fee_changed.reverted",
            "market.token_allowed.reverted",
        ]


def _certificate_rows(db) -> list[tuple[int, str, int | None, int | None, bool]]:
    with db.sessions() as s:
        return [
            (
                c.token_id,
                c.status,
                c.revoke_reason_code,
                c.replaced_by_token_id,
                c.removed_at is None,
            )
            for c in s.scalars(select(Certificate).order_by(Certificate.id))
        ]


def test_corrections_and_removals_are_mirrored_and_undone_by_a_reorg(
    db, anvil, emitter, cert_emitter
):
    emitter.tx("courseCreated", 6, PROVIDER, 0, "Corrected course")
    first = (6 << 160) | int(LEARNER, 16)
    second = (1 << 224) | first
    cert_emitter.tx("certificateMinted", first, LEARNER, 6, PROVIDER, "0x" + "aa" * 28)
    ix = indexer_for(db, anvil, emitter, cert_emitter, reorg_window=16)
    ix.catch_up()
    before_changes = anvil.block_number()

    # reissue(): the old one revoked as corrected, the next generation minted, then linked.
    cert_emitter.tx("certificateRevoked", first, 7, PROVIDER)
    cert_emitter.tx("certificateMinted", second, LEARNER, 6, PROVIDER, "0x" + "bb" * 28)
    cert_emitter.tx("certificateReplaced", first, second)
    cert_emitter.tx("certificateRemoved", second, LEARNER)
    ix.catch_up()
    assert _certificate_rows(db) == [
        (first, CertificateStatus.REVOKED, 7, second, True),
        (second, CertificateStatus.REMOVED, None, None, False),
    ]
    with db.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "indexer")).all()
        assert {"certificate.replaced", "certificate.removed"} <= set(actions)

    # The chain drops the correction and the removal: the first certificate is valid again and
    # the mirrored second one is gone.
    anvil.rpc("anvil_reorg", anvil.block_number() - before_changes, [])
    ix.catch_up()
    assert ix.reorgs == 1
    assert _certificate_rows(db) == [(first, CertificateStatus.MINTED, None, None, True)]


def test_a_removal_alone_is_undone_by_a_reorg(db, anvil, emitter, cert_emitter):
    emitter.tx("courseCreated", 7, PROVIDER, 0, "Removed course")
    token_id = (7 << 160) | int(LEARNER, 16)
    cert_emitter.tx("certificateMinted", token_id, LEARNER, 7, PROVIDER, "0x" + "cc" * 28)
    ix = indexer_for(db, anvil, emitter, cert_emitter, reorg_window=16)
    ix.catch_up()
    before = anvil.block_number()
    cert_emitter.tx("certificateRemoved", token_id, LEARNER)
    ix.catch_up()
    assert _certificate_rows(db) == [(token_id, CertificateStatus.REMOVED, None, None, False)]
    anvil.rpc("anvil_reorg", anvil.block_number() - before, [])
    ix.catch_up()
    assert _certificate_rows(db) == [(token_id, CertificateStatus.MINTED, None, None, True)]


def _profile(db, chain_id: int = 31337) -> tuple[str, str, bool, str | None, str] | None:
    with db.sessions() as s:
        p = s.get(ProviderProfile, (chain_id, PROVIDER))
        return None if p is None else (p.name, p.domain, p.verified, p.verified_by, p.profile_hash)


def test_provider_records_are_mirrored_and_a_reorg_drops_a_verification(
    db, anvil, emitter, cert_emitter
):
    verifier = address(0x7E51F1E5)
    reviewed = profile_hash("Solidity School", "solidity.school")
    cert_emitter.tx("providerProfileSet", PROVIDER, "Solidity School", "solidity.school")
    ix = indexer_for(db, anvil, emitter, cert_emitter, reorg_window=16)
    ix.catch_up()
    assert _profile(db) == ("Solidity School", "solidity.school", False, None, reviewed)

    before_verification = anvil.block_number()
    cert_emitter.tx("providerVerificationSet", PROVIDER, True, reviewed, verifier)
    ix.catch_up()
    assert _profile(db) == ("Solidity School", "solidity.school", True, verifier, reviewed)
    with db.sessions() as s:
        assert s.get(ProviderProfile, (anvil.chain_id, PROVIDER)).verified_at is not None

    # A rename drops the verification, as on-chain.
    cert_emitter.tx("providerProfileSet", PROVIDER, "Harvard", "solidity.school")
    ix.catch_up()
    renamed = profile_hash("Harvard", "solidity.school")
    assert _profile(db) == ("Harvard", "solidity.school", False, None, renamed)

    # A reorg drops the verification and the rename: the first, unverified record is back.
    anvil.rpc("anvil_reorg", anvil.block_number() - before_verification, [])
    ix.catch_up()
    assert ix.reorgs == 1
    assert _profile(db) == ("Solidity School", "solidity.school", False, None, reviewed)
    with db.sessions() as s:
        assert s.get(ProviderProfile, (anvil.chain_id, PROVIDER)).verified_at is None
        reverted = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "provider.record_reverted")
        ).all()
        assert len(reverted) == 2


def test_a_reorg_drops_a_first_provider_record(db, anvil, emitter, cert_emitter):
    ix = indexer_for(db, anvil, emitter, cert_emitter, reorg_window=16)
    ix.catch_up()
    before = anvil.block_number()
    cert_emitter.tx("providerProfileSet", PROVIDER, "School", "school.example")
    ix.catch_up()
    assert _profile(db) is not None
    anvil.rpc("anvil_reorg", anvil.block_number() - before, [])
    ix.catch_up()
    assert _profile(db) is None
