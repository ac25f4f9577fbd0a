"""Buyers keep the refund window they were quoted: a window cut ordered before a purchase makes
the purchase revert (RefundWindowBelowQuote) on every purchase path, never take the money under
worse terms."""

from __future__ import annotations

from typing import Any

import ape
from eth_account import Account
from market_helpers import DAY, ESN_PRICE, NATIVE_PRICE, REFUND_WINDOW, ZERO, new_course, order_ref
from support.signing import sign_permit


def _priced_course(market: Any, provider: Any, esn: Any, title: str) -> int:
    course = new_course(market, provider, title, REFUND_WINDOW)
    market.setPrice(course, ZERO, NATIVE_PRICE, sender=provider)
    market.setPrice(course, esn, ESN_PRICE, sender=provider)
    return course


def test_a_purchase_quoted_a_longer_window_than_the_course_has_reverts(
    market, provider, learner, esn
) -> None:
    course = _priced_course(market, provider, esn, "Cut Window")
    market.setRefundWindow(course, DAY, sender=provider)
    with ape.reverts(
        market.RefundWindowBelowQuote,
        courseId=course,
        refundWindow=DAY,
        quotedWindow=REFUND_WINDOW,
    ):
        market.purchase(
            course, ZERO, NATIVE_PRICE, ZERO, order_ref("q"), REFUND_WINDOW,
            sender=learner, value=NATIVE_PRICE,
        )  # fmt: skip
    esn.mint(learner, ESN_PRICE, sender=learner)
    esn.approve(market, ESN_PRICE, sender=learner)
    with ape.reverts(market.RefundWindowBelowQuote):
        market.purchase(course, esn, ESN_PRICE, ZERO, order_ref("q"), REFUND_WINDOW, sender=learner)
    assert not market.hasAccess(course, learner)


def test_the_permit_path_and_gifts_are_bound_too(market, provider, learner, other, esn, chain):
    course = _priced_course(market, provider, esn, "Cut Window Permit")
    market.setRefundWindow(course, 0, sender=provider)
    esn.mint(learner, ESN_PRICE, sender=learner)
    deadline = chain.pending_timestamp + 3600
    v, r, s = sign_permit(
        learner.private_key,
        token=esn,
        owner=learner.address,
        spender=market.address,
        value=ESN_PRICE,
        deadline=deadline,
        chain_id=chain.chain_id,
    )
    with ape.reverts(market.RefundWindowBelowQuote, refundWindow=0, quotedWindow=REFUND_WINDOW):
        market.purchaseWithPermit(
            course, esn, ESN_PRICE, other, order_ref("g"), REFUND_WINDOW, deadline, v, r, s,
            sender=learner,
        )  # fmt: skip
    assert not market.hasAccess(course, other)


def test_free_claims_are_bound_and_longer_windows_are_fine(market, provider, learner, other):
    free = new_course(market, provider, "Free Window", 7 * DAY)
    market.setPrice(free, ZERO, 0, sender=provider)
    with ape.reverts(market.RefundWindowBelowQuote, refundWindow=7 * DAY, quotedWindow=8 * DAY):
        market.purchase(free, ZERO, 0, ZERO, order_ref("f"), 8 * DAY, sender=learner)
    # A window at least as long as the quote (or a quote of 0: any terms) is accepted.
    market.purchase(free, ZERO, 0, ZERO, order_ref("f"), 7 * DAY, sender=learner)
    market.purchase(free, ZERO, 0, ZERO, order_ref("f"), 0, sender=other)
    assert market.hasAccess(free, learner) and market.hasAccess(free, other)


def _send_raw(w3: Any, account: Any, to: str, data: bytes, *, value: int, tip: int) -> bytes:
    tx = {
        "to": to,
        "data": data,
        "value": value,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "gas": 400_000,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": tip,
        "chainId": w3.eth.chain_id,
        "type": 2,
    }
    signed = Account.from_key(account.private_key).sign_transaction(tx)
    return bytes(w3.eth.send_raw_transaction(signed.raw_transaction))


def test_a_window_cut_front_running_a_purchase_in_the_same_block_makes_it_revert(
    market, provider, learner, esn, chain
) -> None:
    course = _priced_course(market, provider, esn, "Front-run Window")
    w3 = chain.provider.web3
    held = w3.eth.get_balance(market.address)
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        # The provider cuts the window; the buyer's purchase, quoted 14 days, lands after it in
        # the same block.
        cut = _send_raw(
            w3, provider, market.address, market.setRefundWindow.encode_input(course, 0),
            value=0, tip=50 * 10**9,
        )  # fmt: skip
        purchase = _send_raw(
            w3, learner, market.address,
            market.purchase.encode_input(
                course, ZERO, NATIVE_PRICE, ZERO, order_ref("fr"), REFUND_WINDOW
            ),
            value=NATIVE_PRICE, tip=10**9,
        )  # fmt: skip
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    cut_receipt = w3.eth.get_transaction_receipt(cut)
    purchase_receipt = w3.eth.get_transaction_receipt(purchase)
    assert cut_receipt["blockNumber"] == purchase_receipt["blockNumber"]
    assert cut_receipt["transactionIndex"] < purchase_receipt["transactionIndex"]
    assert (cut_receipt["status"], purchase_receipt["status"]) == (1, 0)
    assert not market.hasAccess(course, learner)
    assert w3.eth.get_balance(market.address) == held  # no money taken under the new terms
