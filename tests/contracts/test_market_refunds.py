"""Refunds: who may refund, the deadline boundary, digest checks, and the escrow guarantee."""

from __future__ import annotations

import ape
from market_helpers import (
    CARD,
    DAY,
    NATIVE_PRICE,
    NONE,
    REFUND_WINDOW,
    USDC_PRICE,
    ZERO,
    buy_native,
    buy_token,
    fee_of,
    new_course,
)

FEE = fee_of(NATIVE_PRICE)
NET = NATIVE_PRICE - FEE


def _refund(market, course_id, learner, sender, *, payer=None, token=ZERO, amount=None, fee=None):
    return market.refund(
        course_id,
        learner,
        payer or learner,
        token,
        NATIVE_PRICE if amount is None else amount,
        FEE if fee is None else fee,
        sender=sender,
    )


def test_provider_refund_credits_payer_and_revokes(market, course_id, provider, learner, chain):
    buy_native(market, course_id, learner)
    tx = _refund(market, course_id, learner, provider)

    [log] = tx.decode_logs(market.Refunded)
    assert log.courseId == course_id
    assert log.learner == learner.address
    assert log.payer == learner.address
    assert log.token == ZERO
    assert log.amount == NATIVE_PRICE
    assert log.by == provider.address
    assert not market.hasAccess(course_id, learner)
    assert market.accessOf(course_id, learner).source == NONE
    assert market.escrowOf(provider, ZERO) == (0, 0)
    assert market.withdrawableOf(learner, ZERO) == NATIVE_PRICE

    before = chain.get_balance(learner.address)
    wtx = market.withdraw(ZERO, sender=learner)
    [wlog] = wtx.decode_logs(market.Withdrawn)
    assert (wlog.payee, wlog.token, wlog.amount) == (learner.address, ZERO, NATIVE_PRICE)
    assert chain.get_balance(learner.address) == before + NATIVE_PRICE - wtx.total_fees_paid


def test_refunded_learner_can_buy_again(market, course_id, provider, learner):
    buy_native(market, course_id, learner)
    _refund(market, course_id, learner, provider)
    buy_native(market, course_id, learner)
    assert market.hasAccess(course_id, learner)


def test_gift_refund_goes_to_the_payer(market, course_id, provider, learner, other):
    buy_native(market, course_id, learner, recipient=other)
    with ape.reverts(market.PurchaseMismatch, courseId=course_id, learner=other.address):
        _refund(market, course_id, other, provider)  # payer = other: wrong
    _refund(market, course_id, other, provider, payer=learner)
    assert market.withdrawableOf(learner, ZERO) == NATIVE_PRICE
    assert market.withdrawableOf(other, ZERO) == 0


def test_delegate_and_operator_may_refund(market, course_id, provider, operator, learner, other):
    buy_native(market, course_id, learner)
    buy_native(market, course_id, other)
    market.setDelegate(other, True, sender=provider)
    assert _refund(market, course_id, learner, other).decode_logs(market.Refunded)[0].by == (
        other.address
    )
    assert _refund(market, course_id, other, operator).decode_logs(market.Refunded)[0].by == (
        operator.address
    )


def test_stranger_cannot_refund(market, course_id, learner, other):
    buy_native(market, course_id, learner)
    with ape.reverts(market.NotCourseManager, courseId=course_id, account=other.address):
        _refund(market, course_id, learner, other)


def test_refund_of_unknown_course_reverts(market, provider, learner):
    with ape.reverts(market.UnknownCourse, courseId=77):
        _refund(market, 77, learner, provider)


def test_refund_at_deadline_succeeds_one_second_later_fails(
    market, course_id, provider, learner, other, chain
):
    start = chain.pending_timestamp + 10
    chain.pending_timestamp = start
    buy_native(market, course_id, learner)
    chain.pending_timestamp = start + 1
    buy_native(market, course_id, other)
    deadline = market.accessOf(course_id, learner).refundDeadline
    assert deadline == start + REFUND_WINDOW
    assert market.accessOf(course_id, other).refundDeadline == deadline + 1

    chain.pending_timestamp = deadline
    _refund(market, course_id, learner, provider)  # block.timestamp == deadline: accepted

    chain.pending_timestamp = deadline + 2
    other_deadline = deadline + 1
    with ape.reverts(
        market.RefundWindowClosed,
        courseId=course_id,
        learner=other.address,
        deadline=other_deadline,
    ):
        _refund(market, course_id, other, provider)


def test_refund_needs_the_exact_purchase(market, course_id, provider, learner, usdc):
    buy_native(market, course_id, learner)
    for kwargs in (
        {"amount": NATIVE_PRICE - 1},
        {"fee": FEE + 1},
        {"token": usdc.address},
        {"payer": provider.address},
    ):
        with ape.reverts(market.PurchaseMismatch, courseId=course_id, learner=learner.address):
            _refund(market, course_id, learner, provider, **kwargs)


def test_not_refundable_records(market, course_id, provider, operator, learner, other):
    with ape.reverts(market.NotRefundable, courseId=course_id, learner=learner.address):
        _refund(market, course_id, learner, provider)  # no access at all
    market.grantAccess(course_id, learner, CARD, b"\x01" * 32, sender=operator)
    with ape.reverts(market.NotRefundable):
        _refund(market, course_id, learner, provider)
    free = new_course(market, provider, "Free", DAY)
    market.setPrice(free, ZERO, 0, sender=provider)
    market.purchase(free, ZERO, 0, ZERO, b"\x00" * 32, 0, sender=other)
    with ape.reverts(market.NotRefundable, courseId=free, learner=other.address):
        _refund(market, free, other, provider, amount=0, fee=0)


def test_refund_after_provider_withdrew_everything(
    market, course_id, provider, learner, other, chain
):
    # An old purchase matures and is withdrawn; a recent one must stay refundable in full.
    buy_native(market, course_id, other)
    chain.pending_timestamp = chain.pending_timestamp + REFUND_WINDOW + 2 * DAY
    buy_native(market, course_id, learner)
    market.withdraw(ZERO, sender=provider)
    assert market.withdrawableOf(provider, ZERO) == 0
    with ape.reverts(market.NothingToWithdraw, payee=provider.address, token=ZERO):
        market.withdraw(ZERO, sender=provider)

    _refund(market, course_id, learner, provider)
    market.withdraw(ZERO, sender=learner)
    assert chain.get_balance(market.address) == FEE  # only the treasury's fee of the old one


def test_fee_change_between_purchase_and_refund(market, course_id, owner, provider, learner, usdc):
    buy_token(market, course_id, usdc, learner)
    market.setFee(1_000, sender=owner)
    with ape.reverts(market.PurchaseMismatch):
        _refund(
            market,
            course_id,
            learner,
            provider,
            token=usdc,
            amount=USDC_PRICE,
            fee=fee_of(USDC_PRICE, 1_000),
        )
    _refund(
        market, course_id, learner, provider, token=usdc, amount=USDC_PRICE, fee=fee_of(USDC_PRICE)
    )
    assert market.escrowOf(provider, usdc) == (0, 0)
    assert market.withdrawableOf(learner, usdc) == USDC_PRICE


def test_refund_works_while_paused(market, course_id, guardian, provider, learner):
    buy_native(market, course_id, learner)
    market.pause(sender=guardian)
    _refund(market, course_id, learner, provider)
    tx = market.withdraw(ZERO, sender=learner)
    assert tx.decode_logs(market.Withdrawn)[0].amount == NATIVE_PRICE
    assert not market.hasAccess(course_id, learner)


def test_treasury_as_provider(market, owner, provider, treasury, learner, other, chain):
    own = new_course(market, treasury, "Platform course", DAY)
    market.setPrice(own, ZERO, NATIVE_PRICE, sender=treasury)
    buy_native(market, own, learner)
    buy_native(market, own, other)
    _refund(market, own, other, treasury)
    assert market.escrowOf(treasury, ZERO) == (NET, FEE)
    chain.mine(timestamp=chain.pending_timestamp + 3 * DAY)
    assert market.withdrawableOf(treasury, ZERO) == NATIVE_PRICE  # net and fee both its own
    assert market.withdraw(ZERO, sender=treasury).return_value in (NATIVE_PRICE, None)
    assert chain.get_balance(market.address) == NATIVE_PRICE  # the refunded payer's credit
    assert market.withdrawableOf(other, ZERO) == NATIVE_PRICE
