"""Catalog management, operator grants, admin settings, pausing and roles."""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak
from market_helpers import (
    CARD,
    DAY,
    ESN_PRICE,
    FEE_BPS,
    GRANT,
    NATIVE_PRICE,
    NONE,
    PURCHASE,
    REFUND_WINDOW,
    ZERO,
    buy_native,
    new_course,
)

REF = keccak(text="stripe:pi_123")


# ---------------------------------------------------------------- catalog


def test_create_course(market, provider, other):
    first = market.courseCount() + 1  # session fixtures may have registered courses already
    tx = market.createCourse("Solidity from Zero", REFUND_WINDOW, sender=provider)
    [log] = tx.decode_logs(market.CourseCreated)
    assert log.courseId == first
    assert log.event_arguments["provider"] == provider.address
    assert (log.refundWindow, log.title) == (REFUND_WINDOW, "Solidity from Zero")
    market.createCourse("Zero-Knowledge Proofs in Practice", 0, sender=other)
    assert market.courseCount() == first + 1
    course = market.course(first + 1)
    assert (course.provider, course.refundWindow, course.listed) == (other.address, 0, True)
    assert market.courseProvider(first) == provider.address
    assert market.courseTitle(first + 1) == "Zero-Knowledge Proofs in Practice"
    assert market.priceOf(first, ZERO) == (0, False)


def test_create_course_validation(market, provider):
    with ape.reverts(market.EmptyTitle):
        market.createCourse("", DAY, sender=provider)
    with ape.reverts(market.TitleTooLong, length=101):
        market.createCourse("x" * 101, DAY, sender=provider)
    market.createCourse("é" * 50, DAY, sender=provider)  # 100 bytes of UTF-8
    with ape.reverts(
        market.RefundWindowTooLong, refundWindow=30 * DAY + 1, maxRefundWindow=30 * DAY
    ):
        market.createCourse("Too long a window", 30 * DAY + 1, sender=provider)


def test_unknown_course_views_revert(market):
    unknown = market.courseCount() + 1
    for view in (market.course, market.courseProvider, market.courseTitle):
        with ape.reverts(market.UnknownCourse, courseId=unknown):
            view(unknown)


def test_set_and_remove_price(market, course_id, provider, esn):
    tx = market.setPrice(course_id, esn, 7 * ESN_PRICE, sender=provider)
    [log] = tx.decode_logs(market.PriceSet)
    assert (log.courseId, log.token, log.price, log.accepted) == (
        course_id,
        esn.address,
        7 * ESN_PRICE,
        True,
    )
    assert market.priceOf(course_id, esn) == (7 * ESN_PRICE, True)
    for token in (esn, ZERO):
        tx = market.removePrice(course_id, token, sender=provider)
        [log] = tx.decode_logs(market.PriceSet)
        assert (log.price, log.accepted) == (0, False)
        assert market.priceOf(course_id, token) == (0, False)
    market.setPrice(course_id, ZERO, 2**96 - 1, sender=provider)
    assert market.priceOf(course_id, ZERO) == (2**96 - 1, True)


def test_price_validation(market, course_id, provider, fot_token):
    with ape.reverts(market.PriceTooHigh, price=2**96, maxPrice=2**96 - 1):
        market.setPrice(course_id, ZERO, 2**96, sender=provider)
    with ape.reverts(market.TokenNotAllowed, token=fot_token.address):
        market.setPrice(course_id, fot_token, 1, sender=provider)


def test_only_managers_manage(market, course_id, provider, other):
    calls = (
        lambda: market.setPrice(course_id, ZERO, 1, sender=other),
        lambda: market.removePrice(course_id, ZERO, sender=other),
        lambda: market.setListed(course_id, False, sender=other),
        lambda: market.setRefundWindow(course_id, DAY, sender=other),
    )
    for call in calls:
        with ape.reverts(market.NotCourseManager, courseId=course_id, account=other.address):
            call()
    with ape.reverts(market.UnknownCourse, courseId=999):
        market.setListed(999, False, sender=provider)


def test_delegate_manages_provider_courses(market, course_id, provider, other):
    tx = market.setDelegate(other, True, sender=provider)
    [log] = tx.decode_logs(market.DelegateSet)
    assert log.event_arguments["provider"] == provider.address
    assert (log.delegate, log.allowed) == (other.address, True)
    assert market.isDelegate(provider, other)
    market.setPrice(course_id, ZERO, 1, sender=other)
    market.setDelegate(other, False, sender=provider)
    assert not market.isDelegate(provider, other)
    with ape.reverts(market.NotCourseManager):
        market.setPrice(course_id, ZERO, 2, sender=other)
    with ape.reverts(market.ZeroAddress):
        market.setDelegate(ZERO, True, sender=provider)


def test_listing_and_refund_window(market, course_id, provider, learner):
    tx = market.setListed(course_id, False, sender=provider)
    [log] = tx.decode_logs(market.CourseUpdated)
    assert (log.courseId, log.listed, log.refundWindow) == (course_id, False, REFUND_WINDOW)
    assert not market.course(course_id).listed
    market.setListed(course_id, True, sender=provider)
    tx = market.setRefundWindow(course_id, 2 * DAY, sender=provider)
    [log] = tx.decode_logs(market.CourseUpdated)
    assert (log.listed, log.refundWindow) == (True, 2 * DAY)
    with ape.reverts(market.RefundWindowTooLong):
        market.setRefundWindow(course_id, 31 * DAY, sender=provider)
    buy_native(market, course_id, learner)
    record = market.accessOf(course_id, learner)
    assert record.refundDeadline - record.grantedAt == 2 * DAY


# ---------------------------------------------------------------- operator grants


@pytest.mark.parametrize("source", [CARD, GRANT])
def test_grant_and_revoke_access(market, course_id, operator, learner, chain, source):
    tx = market.grantAccess(course_id, learner, source, REF, sender=operator)
    [log] = tx.decode_logs(market.AccessGranted)
    assert (log.courseId, log.learner, log.source, log.ref) == (
        course_id,
        learner.address,
        source,
        REF,
    )
    record = market.accessOf(course_id, learner)
    assert (record.source, record.grantedAt, record.refundDeadline) == (
        source,
        chain.blocks.head.timestamp,
        0,
    )
    assert record.digest == REF[:21]
    assert market.hasAccess(course_id, learner)
    with ape.reverts(market.AlreadyHasAccess, courseId=course_id, learner=learner.address):
        market.grantAccess(course_id, learner, GRANT, REF, sender=operator)
    with ape.reverts(market.AlreadyHasAccess):
        buy_native(market, course_id, learner)

    chargeback = keccak(text="chargeback")
    tx = market.revokeAccess(course_id, learner, chargeback, sender=operator)
    [log] = tx.decode_logs(market.AccessRevoked)
    assert (log.courseId, log.learner, log.source, log.ref) == (
        course_id,
        learner.address,
        source,
        chargeback,
    )
    assert not market.hasAccess(course_id, learner)
    assert market.accessOf(course_id, learner).source == NONE


def test_grant_validation(market, course_id, operator, learner):
    for bad in (NONE, PURCHASE):
        with ape.reverts(market.NotOperatorGranted, courseId=course_id, learner=learner.address):
            market.grantAccess(course_id, learner, bad, REF, sender=operator)
    with ape.reverts(market.UnknownCourse, courseId=999):
        market.grantAccess(999, learner, CARD, REF, sender=operator)
    with ape.reverts(market.ZeroAddress):
        market.grantAccess(course_id, ZERO, CARD, REF, sender=operator)


def test_revoke_only_operator_granted(market, course_id, operator, learner, other):
    buy_native(market, course_id, learner)
    with ape.reverts(market.NotOperatorGranted, courseId=course_id, learner=learner.address):
        market.revokeAccess(course_id, learner, REF, sender=operator)
    with ape.reverts(market.NotOperatorGranted, courseId=course_id, learner=other.address):
        market.revokeAccess(course_id, other, REF, sender=operator)


def test_non_operator_cannot_grant_or_revoke(market, course_id, operator, provider, learner):
    role = market.OPERATOR_ROLE()
    with ape.reverts(
        market.AccessControlUnauthorizedAccount, account=provider.address, neededRole=role
    ):
        market.grantAccess(course_id, learner, CARD, REF, sender=provider)
    market.grantAccess(course_id, learner, CARD, REF, sender=operator)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.revokeAccess(course_id, learner, REF, sender=provider)


def test_grant_paused_revoke_not(market, course_id, operator, guardian, learner, other):
    market.grantAccess(course_id, learner, CARD, REF, sender=operator)
    market.pause(sender=guardian)
    with ape.reverts(market.EnforcedPause):
        market.grantAccess(course_id, other, CARD, REF, sender=operator)
    market.revokeAccess(course_id, learner, REF, sender=operator)
    assert not market.hasAccess(course_id, learner)


# ---------------------------------------------------------------- admin


def test_fee_changes(market, owner, other):
    assert market.feeBps() == FEE_BPS
    tx = market.setFee(2_000, sender=owner)
    [log] = tx.decode_logs(market.FeeChanged)
    assert (log.previousBps, log.newBps) == (FEE_BPS, 2_000)
    assert market.feeBps() == 2_000
    with ape.reverts(market.FeeTooHigh, bps=2_001, maxBps=2_000):
        market.setFee(2_001, sender=owner)
    with ape.reverts(market.AccessControlUnauthorizedAccount, account=other.address):
        market.setFee(1, sender=other)


def test_treasury_changes(market, owner, treasury, other):
    tx = market.setTreasury(other, sender=owner)
    [log] = tx.decode_logs(market.TreasuryChanged)
    assert (log.previous, log.current) == (treasury.address, other.address)
    assert market.treasury() == other.address
    with ape.reverts(market.ZeroAddress):
        market.setTreasury(ZERO, sender=owner)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.setTreasury(other, sender=other)


@pytest.mark.parametrize("old_key_releases_first", [False, True], ids=["quiet", "front-run"])
def test_a_rotated_treasury_gets_every_fee_not_withdrawn_whoever_releases(
    market, owner, treasury, provider, learner, other, accounts, chain, old_key_releases_first
):
    """The treasury's key leaked: the admin rotates it. Matured fees (in escrow or released),
    fees still inside refund windows and fees paid at once all go to the new treasury, even if
    the old key calls `release` on every ring right before the rotation."""
    new_treasury = accounts[11]
    early = new_course(market, provider, "Early", DAY)
    late = new_course(market, provider, "Late", 20 * DAY)
    at_once = new_course(market, provider, "At Once", 0)
    for course in (early, late, at_once):
        market.setPrice(course, ZERO, NATIVE_PRICE, sender=provider)
    buy_native(market, early, learner)
    buy_native(market, at_once, learner)
    chain.pending_timestamp = chain.pending_timestamp + 3 * DAY  # `early` has matured
    buy_native(market, late, other)
    fee = NATIVE_PRICE * FEE_BPS // 10_000
    released = market.releasableOf(provider, ZERO)[1]
    assert released == fee and market.escrowOf(provider, ZERO)[1] == fee
    if old_key_releases_first:
        market.release(provider, ZERO, sender=treasury)  # the old key front-runs the rotation
    market.setTreasury(new_treasury, sender=owner)

    with ape.reverts(market.NothingToWithdraw):
        market.withdraw(ZERO, sender=treasury)
    assert market.withdrawableOf(treasury, ZERO) == 0
    # At once, plus the matured fee if the old key released it: waiting for the new treasury.
    waiting = 2 * fee if old_key_releases_first else fee
    assert market.feesOf(ZERO) == market.withdrawableOf(new_treasury, ZERO) == waiting
    chain.pending_timestamp = chain.pending_timestamp + 21 * DAY
    market.release(provider, ZERO, sender=treasury)  # anyone, the old key included
    before = new_treasury.balance
    tx = market.withdraw(ZERO, sender=new_treasury)
    assert new_treasury.balance - before == 3 * fee - tx.total_fees_paid
    assert market.feesOf(ZERO) == 0


def test_token_allowlist(market, owner, other, fot_token, esn):
    assert market.isTokenAllowed(ZERO)
    assert market.isTokenAllowed(esn)
    assert not market.isTokenAllowed(fot_token)
    tx = market.setTokenAllowed(fot_token, True, sender=owner)
    [log] = tx.decode_logs(market.TokenAllowed)
    assert (log.token, log.allowed) == (fot_token.address, True)
    assert market.isTokenAllowed(fot_token)
    market.setTokenAllowed(fot_token, False, sender=owner)
    assert not market.isTokenAllowed(fot_token)
    market.setTokenAllowed(other, False, sender=owner)  # never listed: a no-op with an event
    assert not market.isTokenAllowed(other)
    with ape.reverts(market.ZeroAddress):
        market.setTokenAllowed(ZERO, True, sender=owner)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.setTokenAllowed(fot_token, True, sender=other)


def test_token_allowlist_capacity(market, owner, accounts, chain):
    assert market.MAX_TOKENS() == 64
    # ESN and USDC hold indexes 0 and 1; fill the rest with arbitrary addresses. Plain web3
    # transactions from the unlocked dev account: 62 Ape transactions would take ~10 s.
    web3 = chain.provider.web3
    abi = [item.model_dump(mode="json", by_alias=True) for item in market.contract_type.abi]
    fast = web3.eth.contract(address=market.address, abi=abi)
    for i in range(62):
        token = web3.to_checksum_address(f"0x{i + 1:040x}")
        fast.functions.setTokenAllowed(token, True).transact({"from": owner.address})
    assert market.isTokenAllowed(f"0x{62:040x}")
    with ape.reverts(market.TooManyTokens):
        market.setTokenAllowed(accounts[9], True, sender=owner)
    # Re-allowing a known token needs no new index.
    market.setTokenAllowed(f"0x{1:040x}", False, sender=owner)
    market.setTokenAllowed(f"0x{1:040x}", True, sender=owner)
    assert market.isTokenAllowed(f"0x{1:040x}")
    assert not market.isTokenAllowed(accounts[9])


def test_pause_and_unpause(market, course_id, guardian, owner, learner):
    assert not market.paused()
    with ape.reverts(market.AccessControlUnauthorizedAccount, account=owner.address):
        market.pause(sender=owner)
    tx = market.pause(sender=guardian)
    assert tx.decode_logs(market.Paused)[0].account == guardian.address
    assert market.paused()
    with ape.reverts(market.EnforcedPause):
        market.pause(sender=guardian)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.unpause(sender=learner)
    tx = market.unpause(sender=guardian)
    assert tx.decode_logs(market.Unpaused)[0].account == guardian.address
    with ape.reverts(market.ExpectedPause):
        market.unpause(sender=guardian)
    buy_native(market, course_id, learner)


def test_admin_transfer_is_two_step_with_delay(market, owner, other, chain):
    assert market.defaultAdmin() == owner.address
    assert market.defaultAdminDelay() == 3 * DAY
    market.beginDefaultAdminTransfer(other, sender=owner)
    with ape.reverts(market.AccessControlEnforcedDefaultAdminDelay):
        market.acceptDefaultAdminTransfer(sender=other)
    chain.pending_timestamp = chain.pending_timestamp + 3 * DAY + 1
    market.acceptDefaultAdminTransfer(sender=other)
    assert market.defaultAdmin() == other.address
    market.setFee(0, sender=other)
    with ape.reverts(market.AccessControlUnauthorizedAccount):
        market.setFee(0, sender=owner)


def test_constructor_validation(owner, treasury, project):
    with ape.reverts(project.CourseMarket.ZeroAddress):
        owner.deploy(project.CourseMarket, owner, ZERO, FEE_BPS, DAY)
    with ape.reverts(project.CourseMarket.FeeTooHigh, bps=2_001, maxBps=2_000):
        owner.deploy(project.CourseMarket, owner, treasury, 2_001, DAY)


def test_constructor_events_and_constants(market, owner, treasury):
    receipt = market.creation_metadata.receipt
    assert receipt.decode_logs(market.TreasuryChanged)[0].current == treasury.address
    assert receipt.decode_logs(market.FeeChanged)[0].newBps == FEE_BPS
    assert market.MAX_REFUND_WINDOW() == 30 * DAY
    assert market.MAX_FEE_BPS() == 2_000
    assert market.MAX_TITLE_LENGTH() == 100
    assert market.OPERATOR_ROLE() == keccak(text="OPERATOR_ROLE")
    assert market.GUARDIAN_ROLE() == keccak(text="GUARDIAN_ROLE")


def test_supports_interface(market):
    assert market.supportsInterface("0x01ffc9a7")  # ERC-165
    assert market.supportsInterface("0x7965db0b")  # IAccessControl
    assert market.supportsInterface("0x31498786")  # IAccessControlDefaultAdminRules
    assert not market.supportsInterface("0xffffffff")
