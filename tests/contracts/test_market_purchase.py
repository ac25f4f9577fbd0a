"""Purchases: native coin, ERC-20, permit, free claims, gifts, and every purchase revert."""

from __future__ import annotations

import ape
import pytest
from market_helpers import (
    DAY,
    ESN_PRICE,
    NATIVE_PRICE,
    NONE,
    PURCHASE,
    REFUND_WINDOW,
    USDC_PRICE,
    ZERO,
    buy_native,
    buy_token,
    fee_of,
    new_course,
    order_ref,
    purchase_digest,
)
from support.signing import sign_permit


def test_native_purchase_records_access_and_escrows(market, course_id, learner, provider, chain):
    ref = order_ref("order-42")
    tx = market.purchase(
        course_id, ZERO, NATIVE_PRICE, ZERO, ref, 0, sender=learner, value=NATIVE_PRICE
    )

    [log] = tx.decode_logs(market.CoursePurchased)
    assert log.courseId == course_id
    assert log.buyer == learner.address
    assert log.recipient == learner.address
    assert log.token == ZERO
    assert log.amount == NATIVE_PRICE
    assert log.fee == fee_of(NATIVE_PRICE)
    assert log.orderRef == ref
    assert tx.decode_logs(market.AccessGranted) == []

    now = chain.blocks.head.timestamp
    record = market.accessOf(course_id, learner)
    assert record.source == PURCHASE
    assert record.grantedAt == now
    assert record.refundDeadline == now + REFUND_WINDOW
    assert record.digest == purchase_digest(learner, ZERO, NATIVE_PRICE, fee_of(NATIVE_PRICE))
    assert market.purchaseDigest(learner, ZERO, NATIVE_PRICE, fee_of(NATIVE_PRICE)) == (
        record.digest
    )
    assert market.hasAccess(course_id, learner)
    assert market.escrowOf(provider, ZERO) == (
        NATIVE_PRICE - fee_of(NATIVE_PRICE),
        fee_of(NATIVE_PRICE),
    )
    assert market.withdrawableOf(provider, ZERO) == 0
    assert chain.get_balance(market.address) == NATIVE_PRICE


def test_native_excess_is_returned_to_the_caller(market, course_id, learner, chain):
    before = chain.get_balance(learner.address)
    tx = buy_native(market, course_id, learner, value=NATIVE_PRICE * 3)
    spent = before - chain.get_balance(learner.address)
    assert spent == NATIVE_PRICE + tx.total_fees_paid
    assert chain.get_balance(market.address) == NATIVE_PRICE


def test_native_underpayment_reverts(market, course_id, learner):
    with ape.reverts(market.IncorrectPayment, expected=NATIVE_PRICE, sent=NATIVE_PRICE - 1):
        buy_native(market, course_id, learner, value=NATIVE_PRICE - 1)


def test_gift_purchase_for_another_recipient(market, course_id, learner, other):
    tx = buy_native(market, course_id, learner, recipient=other)
    [log] = tx.decode_logs(market.CoursePurchased)
    assert log.buyer == learner.address
    assert log.recipient == other.address
    assert market.hasAccess(course_id, other)
    assert not market.hasAccess(course_id, learner)
    # The payer in the digest is the buyer: refunds go to whoever paid.
    assert market.accessOf(course_id, other).digest == purchase_digest(
        learner, ZERO, NATIVE_PRICE, fee_of(NATIVE_PRICE)
    )


def test_second_purchase_for_same_recipient_reverts(market, course_id, learner, other, usdc):
    buy_native(market, course_id, learner)
    with ape.reverts(market.AlreadyHasAccess, courseId=course_id, learner=learner.address):
        buy_native(market, course_id, other, recipient=learner)
    usdc.approve(market, USDC_PRICE, sender=learner)
    with ape.reverts(market.AlreadyHasAccess):
        market.purchase(course_id, usdc, USDC_PRICE, ZERO, b"\x00" * 32, 0, sender=learner)


def test_price_above_max_reverts(market, course_id, learner, provider):
    market.setPrice(course_id, ZERO, NATIVE_PRICE * 2, sender=provider)
    with ape.reverts(market.PriceAboveMax, price=NATIVE_PRICE * 2, maxAmount=NATIVE_PRICE):
        market.purchase(
            course_id, ZERO, NATIVE_PRICE, ZERO, b"\x00" * 32, 0, sender=learner, value=NATIVE_PRICE
        )


def test_unknown_unlisted_and_unpriced_courses_revert(market, course_id, learner, provider, esn):
    with ape.reverts(market.UnknownCourse, courseId=99):
        market.purchase(99, ZERO, NATIVE_PRICE, ZERO, b"\x00" * 32, 0, sender=learner, value=1)
    unpriced = new_course(market, provider, "Unpriced", DAY)
    with ape.reverts(market.TokenNotAccepted, courseId=unpriced, token=ZERO):
        market.purchase(
            unpriced, ZERO, NATIVE_PRICE, ZERO, b"\x00" * 32, 0, sender=learner, value=1
        )
    with ape.reverts(market.TokenNotAccepted, courseId=unpriced, token=esn.address):
        market.purchase(unpriced, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, sender=learner)
    market.setListed(course_id, False, sender=provider)
    with ape.reverts(market.CourseNotListed, courseId=course_id):
        buy_native(market, course_id, learner)


def test_erc20_purchase_pulls_exact_price(market, course_id, learner, usdc, provider):
    before = usdc.balanceOf(learner)
    tx = buy_token(market, course_id, usdc, learner)
    [log] = tx.decode_logs(market.CoursePurchased)
    assert (log.token, log.amount, log.fee) == (usdc.address, USDC_PRICE, fee_of(USDC_PRICE))
    assert usdc.balanceOf(learner) == before - USDC_PRICE
    assert usdc.balanceOf(market) == USDC_PRICE
    assert market.escrowOf(provider, usdc) == (
        USDC_PRICE - fee_of(USDC_PRICE),
        fee_of(USDC_PRICE),
    )
    assert market.accessOf(course_id, learner).digest == purchase_digest(
        learner, usdc, USDC_PRICE, fee_of(USDC_PRICE)
    )


def test_erc20_purchase_with_native_value_reverts(market, course_id, learner, esn):
    esn.approve(market, ESN_PRICE, sender=learner)
    with ape.reverts(market.IncorrectPayment, expected=0, sent=1):
        market.purchase(course_id, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, sender=learner, value=1)


def test_erc20_purchase_without_allowance_reverts(market, course_id, learner, esn):
    with ape.reverts(esn.ERC20InsufficientAllowance):
        market.purchase(course_id, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, sender=learner)
    assert not market.hasAccess(course_id, learner)


def test_fee_on_transfer_token_is_rejected(market, course_id, owner, provider, learner, fot_token):
    market.setTokenAllowed(fot_token, True, sender=owner)
    market.setPrice(course_id, fot_token, 1_000, sender=provider)
    fot_token.mint(learner, 10_000, sender=owner)
    fot_token.approve(market, 1_000, sender=learner)
    with ape.reverts(
        market.TransferShortfall, token=fot_token.address, expected=1_000, received=990
    ):
        market.purchase(course_id, fot_token, 1_000, ZERO, b"\x00" * 32, 0, sender=learner)
    assert not market.hasAccess(course_id, learner)
    assert fot_token.balanceOf(market) == 0


def test_token_removed_from_allowlist_cannot_be_used(
    market, course_id, owner, provider, learner, esn
):
    market.setTokenAllowed(esn, False, sender=owner)
    esn.approve(market, ESN_PRICE, sender=learner)
    with ape.reverts(market.TokenNotAllowed, token=esn.address):
        market.purchase(course_id, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, sender=learner)
    # A course never priced in the token says so, whatever the allowlist.
    unpriced = new_course(market, provider, "Unpriced", DAY)
    with ape.reverts(market.TokenNotAccepted, courseId=unpriced, token=esn.address):
        market.purchase(unpriced, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, sender=learner)
    # Allowing it again restores the provider's existing price.
    market.setTokenAllowed(esn, True, sender=owner)
    market.purchase(course_id, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, sender=learner)
    assert market.hasAccess(course_id, learner)


def test_free_claim_writes_record_without_payment(market, provider, learner, esn):
    free = new_course(market, provider, "Free Intro", 7 * DAY)
    market.setPrice(free, ZERO, 0, sender=provider)
    market.setPrice(free, esn, 0, sender=provider)
    tx = market.purchase(free, ZERO, 0, ZERO, order_ref("free"), 0, sender=learner)
    [log] = tx.decode_logs(market.CoursePurchased)
    assert (log.amount, log.fee) == (0, 0)
    record = market.accessOf(free, learner)
    assert record.source == PURCHASE
    assert record.refundDeadline == 0  # nothing to refund
    assert market.escrowOf(provider, ZERO) == (0, 0)
    # A free ERC-20 claim moves no tokens and needs no allowance.
    other_tx = market.purchase(free, esn, 0, provider, b"\x00" * 32, 0, sender=learner)
    assert other_tx.decode_logs(market.CoursePurchased)[0].token == esn.address
    assert esn.balanceOf(market) == 0


def test_free_claim_with_value_returns_it(market, provider, learner, chain):
    free = new_course(market, provider, "Free Intro", 0)
    market.setPrice(free, ZERO, 0, sender=provider)
    before = chain.get_balance(learner.address)
    tx = market.purchase(free, ZERO, 0, ZERO, b"\x00" * 32, 0, sender=learner, value=10**15)
    assert before - chain.get_balance(learner.address) == tx.total_fees_paid
    assert chain.get_balance(market.address) == 0


def test_zero_window_purchase_pays_out_at_once(market, provider, treasury, learner):
    final_sale = new_course(market, provider, "No Refunds", 0)
    market.setPrice(final_sale, ZERO, NATIVE_PRICE, sender=provider)
    buy_native(market, final_sale, learner)
    assert market.accessOf(final_sale, learner).refundDeadline == 0
    assert market.escrowOf(provider, ZERO) == (0, 0)
    assert market.withdrawableOf(provider, ZERO) == NATIVE_PRICE - fee_of(NATIVE_PRICE)
    assert market.withdrawableOf(treasury, ZERO) == fee_of(NATIVE_PRICE)


def test_zero_fee_books_no_fee(market, course_id, owner, provider, learner):
    market.setFee(0, sender=owner)
    tx = buy_native(market, course_id, learner)
    assert tx.decode_logs(market.CoursePurchased)[0].fee == 0
    assert market.escrowOf(provider, ZERO) == (NATIVE_PRICE, 0)


def test_fee_rounds_down(market, course_id, provider, learner, usdc):
    market.setPrice(course_id, usdc, 39, sender=provider)  # 39 * 5 % = 1.95 → 1
    tx = buy_token(market, course_id, usdc, learner)
    assert tx.decode_logs(market.CoursePurchased)[0].fee == 1
    assert market.escrowOf(provider, usdc) == (38, 1)


def test_purchase_while_paused_reverts(market, course_id, guardian, learner):
    market.pause(sender=guardian)
    with ape.reverts(market.EnforcedPause):
        buy_native(market, course_id, learner)


def _permit(esn, market, buyer, value, deadline, chain, nonce=None):
    return sign_permit(
        buyer.private_key,
        token=esn,
        owner=buyer.address,
        spender=market.address,
        value=value,
        deadline=deadline,
        chain_id=chain.chain_id,
        nonce=nonce,
    )


def test_purchase_with_permit(market, course_id, learner, esn, chain):
    deadline = chain.pending_timestamp + 600
    v, r, s = _permit(esn, market, learner, ESN_PRICE, deadline, chain)
    tx = market.purchaseWithPermit(
        course_id, esn, ESN_PRICE, ZERO, order_ref("permit"), 0, deadline, v, r, s, sender=learner
    )
    [log] = tx.decode_logs(market.CoursePurchased)
    assert (log.token, log.amount, log.orderRef) == (esn.address, ESN_PRICE, order_ref("permit"))
    assert esn.balanceOf(market) == ESN_PRICE
    assert esn.allowance(learner, market) == 0
    assert market.hasAccess(course_id, learner)


def test_front_run_permit_is_tolerated(market, course_id, learner, other, esn, chain):
    deadline = chain.pending_timestamp + 600
    v, r, s = _permit(esn, market, learner, ESN_PRICE, deadline, chain)
    # Someone submits the permit first: the nonce is used, the allowance is in place.
    esn.permit(learner, market, ESN_PRICE, deadline, v, r, s, sender=other)
    market.purchaseWithPermit(
        course_id, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, deadline, v, r, s, sender=learner
    )
    assert market.hasAccess(course_id, learner)


def test_failed_permit_without_allowance_rethrows(market, course_id, learner, esn, chain):
    deadline = chain.pending_timestamp + 600
    v, r, s = _permit(esn, market, learner, ESN_PRICE, deadline, chain, nonce=7)  # wrong nonce
    with ape.reverts(esn.ERC2612InvalidSigner):
        market.purchaseWithPermit(
            course_id, esn, ESN_PRICE, ZERO, b"\x00" * 32, 0, deadline, v, r, s, sender=learner
        )


def test_permit_for_native_coin_reverts(market, course_id, learner):
    with ape.reverts(market.TokenNotAllowed, token=ZERO):
        market.purchaseWithPermit(
            course_id,
            ZERO,
            NATIVE_PRICE,
            ZERO,
            b"\x00" * 32,
            0,
            0,
            27,
            b"\x00" * 32,
            b"\x00" * 32,
            sender=learner,
        )


@pytest.mark.parametrize("window", [1, 30 * DAY])
def test_refund_deadline_follows_window(market, provider, learner, window, chain):
    windowed = new_course(market, provider, "Windowed", window)
    market.setPrice(windowed, ZERO, NATIVE_PRICE, sender=provider)
    buy_native(market, windowed, learner)
    record = market.accessOf(windowed, learner)
    assert record.refundDeadline == chain.blocks.head.timestamp + window
    assert market.accessOf(windowed, provider).source == NONE
