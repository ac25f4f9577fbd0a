"""Escrow, release, withdrawals, and payees that refuse or re-enter."""

from __future__ import annotations

import ape
from eth_utils import keccak
from market_helpers import (
    DAY,
    NATIVE_PRICE,
    REFUND_WINDOW,
    USDC_PRICE,
    ZERO,
    buy_native,
    buy_token,
    fee_of,
    next_day_at,
    order_ref,
    release_day,
)

FEE = fee_of(NATIVE_PRICE)
NET = NATIVE_PRICE - FEE
REENTRANT_CALL = keccak(text="ReentrancyGuardReentrantCall()")[:4]


def test_provider_cannot_withdraw_inside_refund_window(market, course_id, provider, learner, chain):
    next_day_at(chain, 3600)  # a deadline mid-day: the withdrawal below is on the same day
    buy_native(market, course_id, learner)
    deadline = market.accessOf(course_id, learner).refundDeadline
    chain.mine(timestamp=deadline)
    assert market.withdrawableOf(provider, ZERO) == 0
    assert market.releasableOf(provider, ZERO) == (0, 0)
    with ape.reverts(market.NothingToWithdraw, payee=provider.address, token=ZERO):
        market.withdraw(ZERO, sender=provider)


def test_provider_withdraws_after_window(market, course_id, provider, treasury, learner, chain):
    buy_native(market, course_id, learner)
    deadline = market.accessOf(course_id, learner).refundDeadline
    chain.mine(timestamp=release_day(deadline) * DAY)  # first second of the release day
    assert market.escrowOf(provider, ZERO) == (0, 0)
    assert market.releasableOf(provider, ZERO) == (NET, FEE)
    assert market.withdrawableOf(provider, ZERO) == NET
    # The treasury's fee sits in the provider's ring until someone releases it.
    assert market.withdrawableOf(treasury, ZERO) == 0

    before = chain.get_balance(provider.address)
    tx = market.withdraw(ZERO, sender=provider)
    [released] = tx.decode_logs(market.Released)
    assert released.event_arguments["provider"] == provider.address
    assert released.token == ZERO
    assert (released.net, released.fee) == (NET, FEE)
    [withdrawn] = tx.decode_logs(market.Withdrawn)
    assert (withdrawn.payee, withdrawn.token, withdrawn.amount) == (provider.address, ZERO, NET)
    assert chain.get_balance(provider.address) == before + NET - tx.total_fees_paid

    assert market.feesOf(ZERO) == FEE and market.creditedOf(treasury, ZERO) == 0
    market.withdraw(ZERO, sender=treasury)
    assert chain.get_balance(market.address) == 0


def test_release_by_anyone_and_idempotent(
    market, course_id, provider, treasury, other, learner, usdc, chain
):
    buy_token(market, course_id, usdc, learner)
    chain.mine(timestamp=chain.pending_timestamp + REFUND_WINDOW + DAY)
    tx = market.release(provider, usdc, sender=other)
    [log] = tx.decode_logs(market.Released)
    assert (log.net, log.fee) == (USDC_PRICE - fee_of(USDC_PRICE), fee_of(USDC_PRICE))
    assert market.creditedOf(provider, usdc) == USDC_PRICE - fee_of(USDC_PRICE)
    assert market.feesOf(usdc) == fee_of(USDC_PRICE)
    # Nothing left: a second release emits nothing; a non-provider has no ring at all.
    assert market.release(provider, usdc, sender=other).decode_logs(market.Released) == []
    assert market.release(other, usdc, sender=other).decode_logs(market.Released) == []

    before = usdc.balanceOf(treasury)
    market.withdraw(usdc, sender=treasury)
    assert usdc.balanceOf(treasury) == before + fee_of(USDC_PRICE)
    market.withdraw(usdc, sender=provider)
    assert usdc.balanceOf(market) == 0


def test_release_keeps_buckets_still_in_window(market, course_id, provider, learner, other, chain):
    next_day_at(chain, 3600)
    buy_native(market, course_id, learner)
    chain.pending_timestamp = chain.pending_timestamp + 5 * DAY
    buy_native(market, course_id, other)
    chain.mine(timestamp=release_day(market.accessOf(course_id, learner).refundDeadline) * DAY)
    assert market.escrowOf(provider, ZERO) == (NET, FEE)
    market.release(provider, ZERO, sender=provider)
    assert market.escrowOf(provider, ZERO) == (NET, FEE)
    assert market.creditedOf(provider, ZERO) == NET
    # The second purchase stays refundable.
    market.refund(course_id, other, other, ZERO, NATIVE_PRICE, FEE, sender=provider)


def test_ring_slot_reuse_releases_the_old_bucket(
    market, course_id, provider, treasury, learner, other, chain
):
    start = next_day_at(chain, 3600)
    buy_native(market, course_id, learner)
    # Same time of day 32 days later: same ring slot, a day 32 days younger.
    chain.pending_timestamp = start + 32 * DAY
    tx = buy_native(market, course_id, other)
    [log] = tx.decode_logs(market.Released)
    assert log.event_arguments["provider"] == provider.address
    assert (log.token, log.net, log.fee) == (ZERO, NET, FEE)
    assert market.creditedOf(provider, ZERO) == NET
    assert market.feesOf(ZERO) == FEE and market.creditedOf(treasury, ZERO) == 0
    assert market.escrowOf(provider, ZERO) == (NET, FEE)
    assert market.withdraw(ZERO, sender=provider).decode_logs(market.Withdrawn)[0].amount == NET


def test_nothing_to_withdraw(market, other, usdc):
    with ape.reverts(market.NothingToWithdraw, payee=other.address, token=usdc.address):
        market.withdraw(usdc, sender=other)


def test_withdrawals_work_while_paused(market, course_id, guardian, provider, learner, chain):
    buy_native(market, course_id, learner)
    market.pause(sender=guardian)
    chain.pending_timestamp = chain.pending_timestamp + REFUND_WINDOW + DAY
    market.release(provider, ZERO, sender=provider)
    tx = market.withdraw(ZERO, sender=provider)
    assert tx.decode_logs(market.Withdrawn)[0].amount == NET
    assert market.paused()


def test_rejecting_payee_only_blocks_itself(
    market, course_id, provider, learner, owner, project, chain
):
    payee = owner.deploy(project.RejectingPayee)
    data = market.purchase.encode_input(course_id, ZERO, NATIVE_PRICE, ZERO, order_ref("r"), 0)
    payee.execute(market, data, sender=owner, value=NATIVE_PRICE)
    buy_native(market, course_id, learner)
    market.refund(course_id, payee, payee, ZERO, NATIVE_PRICE, FEE, sender=provider)
    market.refund(course_id, learner, learner, ZERO, NATIVE_PRICE, FEE, sender=provider)

    with ape.reverts(market.NativeTransferFailed, to=payee.address, amount=NATIVE_PRICE):
        payee.execute(market, market.withdraw.encode_input(ZERO), sender=owner)
    market.withdraw(ZERO, sender=learner)  # unaffected
    assert market.creditedOf(payee, ZERO) == NATIVE_PRICE
    assert chain.get_balance(market.address) == NATIVE_PRICE


def test_rejecting_payee_cannot_overpay(market, course_id, owner, project):
    payee = owner.deploy(project.RejectingPayee)
    data = market.purchase.encode_input(course_id, ZERO, NATIVE_PRICE, ZERO, order_ref("r"), 0)
    with ape.reverts(market.NativeTransferFailed, to=payee.address, amount=1):
        payee.execute(market, data, sender=owner, value=NATIVE_PRICE + 1)


def _attacker_with_credit(market, course_id, provider, owner, project):
    attacker = owner.deploy(project.ReentrantPayee)
    data = market.purchase.encode_input(course_id, ZERO, NATIVE_PRICE, ZERO, order_ref("a"), 0)
    attacker.execute(market, data, sender=owner, value=NATIVE_PRICE)
    market.refund(course_id, attacker, attacker, ZERO, NATIVE_PRICE, FEE, sender=provider)
    return attacker


def test_reentrant_withdraw_is_blocked(market, course_id, provider, owner, project, chain):
    attacker = _attacker_with_credit(market, course_id, provider, owner, project)
    attacker.setReentry(market, market.withdraw.encode_input(ZERO), 0, sender=owner)
    tx = attacker.execute(market, market.withdraw.encode_input(ZERO), sender=owner)
    assert attacker.reentryAttempts() == 1
    assert not attacker.lastReentrySucceeded()
    assert attacker.lastReentryError() == REENTRANT_CALL
    assert len(tx.decode_logs(market.Withdrawn)) == 1
    assert chain.get_balance(attacker.address) == NATIVE_PRICE
    assert chain.get_balance(market.address) == 0


def test_reentrant_refund_is_blocked(market, course_id, provider, learner, owner, project):
    attacker = _attacker_with_credit(market, course_id, provider, owner, project)
    buy_native(market, course_id, learner)
    market.setDelegate(attacker, True, sender=provider)
    refund = market.refund.encode_input(course_id, learner, learner, ZERO, NATIVE_PRICE, FEE)
    attacker.setReentry(market, refund, 0, sender=owner)
    attacker.execute(market, market.withdraw.encode_input(ZERO), sender=owner)
    assert not attacker.lastReentrySucceeded()
    assert attacker.lastReentryError() == REENTRANT_CALL
    assert market.hasAccess(course_id, learner)
    # Outside a callback the same delegate call is fine.
    attacker.execute(market, refund, sender=owner)
    assert not market.hasAccess(course_id, learner)


def test_reentrant_purchase_is_blocked(market, course_id, provider, learner, owner, project, chain):
    attacker = owner.deploy(project.ReentrantPayee)
    gift = market.purchase.encode_input(course_id, ZERO, NATIVE_PRICE, learner, order_ref("g"), 0)
    attacker.setReentry(market, gift, NATIVE_PRICE, sender=owner)
    data = market.purchase.encode_input(course_id, ZERO, NATIVE_PRICE, ZERO, order_ref("a"), 0)
    # Overpay: the excess refund calls the attacker, which tries to buy again.
    attacker.execute(market, data, sender=owner, value=3 * NATIVE_PRICE)
    assert attacker.reentryAttempts() == 1
    assert attacker.lastReentryError() == REENTRANT_CALL
    assert market.hasAccess(course_id, attacker)
    assert not market.hasAccess(course_id, learner)
    assert chain.get_balance(attacker.address) == 2 * NATIVE_PRICE

    # Nor can it buy from inside a withdrawal.
    market.refund(course_id, attacker, attacker, ZERO, NATIVE_PRICE, FEE, sender=provider)
    attacker.execute(market, market.withdraw.encode_input(ZERO), sender=owner)
    assert attacker.lastReentryError() == REENTRANT_CALL
    assert not market.hasAccess(course_id, learner)


def _hooked_buyer(market, course_id, provider, owner, project):
    """An attacker contract holding an ERC-777-style token the course accepts, its sender hook
    registered: its hook runs inside the market's `transferFrom` of each purchase."""
    cbt = owner.deploy(project.CallbackToken, "Callback", "CBT")
    market.setTokenAllowed(cbt, True, sender=owner)
    market.setPrice(course_id, cbt, USDC_PRICE, sender=provider)
    attacker = owner.deploy(project.ReentrantPayee)
    cbt.mint(attacker, 10 * USDC_PRICE, sender=owner)
    attacker.execute(cbt, cbt.approve.encode_input(market, 2**256 - 1), sender=owner)
    attacker.execute(cbt, cbt.setSenderHook.encode_input(attacker), sender=owner)
    return cbt, attacker


def test_purchase_nested_in_the_token_hook_reverts_the_whole_purchase(
    market, course_id, provider, learner, owner, project, chain
):
    cbt, attacker = _hooked_buyer(market, course_id, provider, owner, project)
    gift = market.purchase.encode_input(
        course_id, cbt, USDC_PRICE, learner, order_ref("nested"), REFUND_WINDOW
    )
    attacker.setReentry(market, gift, 0, sender=owner)
    data = market.purchase.encode_input(
        course_id, cbt, USDC_PRICE, ZERO, order_ref("outer"), REFUND_WINDOW
    )
    # The nested purchase pulls its own price: the outer pull sees twice what it asked for.
    with ape.reverts(market.TransferShortfall):
        attacker.execute(market, data, sender=owner)
    assert not market.hasAccess(course_id, attacker)
    assert not market.hasAccess(course_id, learner)
    assert cbt.balanceOf(market) == 0


def test_release_from_the_token_hook_is_an_ordinary_call(
    market, course_id, provider, owner, project
):
    cbt, attacker = _hooked_buyer(market, course_id, provider, owner, project)
    attacker.setReentry(market, market.release.encode_input(provider, cbt), 0, sender=owner)
    data = market.purchase.encode_input(
        course_id, cbt, USDC_PRICE, ZERO, order_ref("outer"), REFUND_WINDOW
    )
    tx = attacker.execute(market, data, sender=owner)
    assert tx.decode_logs(attacker.ReentryAttempted)[-1].succeeded
    assert market.hasAccess(course_id, attacker)
    assert cbt.balanceOf(market) == USDC_PRICE
