"""Property test of the money model: random purchases, refunds, time jumps, releases and
withdrawals by several providers and learners, in the native coin and a 6-decimals token.

After every step, per token: the market's balance equals every credited balance plus every
escrow ring's content, and `withdrawableOf` agrees with its parts. Every refund the model
considers valid (the purchase exists and its deadline has not passed) must succeed: a refund
can never fail for lack of funds, whatever the providers withdrew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ape
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market_helpers import DAY, ZERO, fee_of, order_ref

WINDOWS = (0, 3 * DAY, 10 * DAY, 30 * DAY)  # one course per window
NATIVE_PRICES = (10**16, 3 * 10**16 + 7, 5 * 10**16, 10**17)
USDC_PRICES = (9_999, 25 * 10**6, 3 * 10**6 + 1, 40 * 10**6)


@dataclass
class Purchase:
    payer: Any
    token: str
    amount: int
    fee: int
    deadline: int


@pytest.fixture(scope="module")
def world(market, provider, accounts, owner, usdc, treasury):
    """Two providers with two courses each; five learners funded in USDC."""
    providers = [provider, accounts[9]]
    learners = [accounts[5], accounts[6], accounts[8], accounts[3], accounts[2]]
    courses = []
    for i, window in enumerate(WINDOWS):
        seller = providers[i % 2]
        market.createCourse(f"Course {i}", window, sender=seller)
        course_id = market.courseCount()
        market.setPrice(course_id, ZERO, NATIVE_PRICES[i], sender=seller)
        market.setPrice(course_id, usdc, USDC_PRICES[i], sender=seller)
        courses.append((course_id, seller))
    for account in learners:
        usdc.mint(account, 10**12, sender=owner)
        usdc.approve(market, 2**256 - 1, sender=account)
    return {
        "providers": providers,
        "learners": learners,
        "courses": courses,
        "payees": [*learners, *providers, treasury],
    }


steps = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(0, 4), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("refund"), st.integers(0, 4), st.integers(0, 3)),
        st.tuples(st.just("warp"), st.integers(0, 12 * DAY)),
        st.tuples(st.just("release"), st.integers(0, 1), st.booleans()),
        st.tuples(st.just("withdraw"), st.integers(0, 7), st.booleans()),
        st.tuples(st.just("fee"), st.integers(0, 2_000)),
    ),
    min_size=3,
    max_size=8,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_money_is_conserved(market, usdc, owner, treasury, world, chain, steps):
    snapshot = chain.snapshot()
    try:
        _run(market, usdc, owner, treasury, world, chain, steps)
    finally:
        chain.restore(snapshot)


def _run(market, usdc, owner, treasury, world, chain, steps):
    tokens = {True: usdc.address, False: ZERO}
    purchases: dict[tuple[int, str], Purchase] = {}
    fee_bps = market.feeBps()
    for step in steps:
        kind = step[0]
        touched: str | None = None  # the token whose money moved in this step
        if kind == "buy":
            _, who, which, erc20 = step
            buyer = world["learners"][who]
            course_id, _seller = world["courses"][which]
            token = tokens[erc20]
            price, _ = market.priceOf(course_id, token)
            key = (course_id, buyer.address)
            if key in purchases:
                with ape.reverts(market.AlreadyHasAccess):
                    _buy(market, course_id, token, price, buyer)
                continue
            _buy(market, course_id, token, price, buyer)
            touched = token
            deadline = market.accessOf(course_id, buyer).refundDeadline
            purchases[key] = Purchase(buyer, token, price, fee_of(price, fee_bps), deadline)
        elif kind == "refund":
            _, who, which = step
            learner = world["learners"][who]
            course_id, seller = world["courses"][which]
            bought = purchases.get((course_id, learner.address))
            if bought is None:
                continue
            now = chain.pending_timestamp
            args = (course_id, learner, bought.payer, bought.token, bought.amount, bought.fee)
            if bought.deadline != 0 and abs(now - bought.deadline) <= 2:
                # The next block may be a wall-clock second later than `now`: too close to
                # call (the boundary itself is pinned by test_market_refunds).
                continue
            if bought.deadline != 0 and now <= bought.deadline:
                # The key property: a refund inside its window always goes through.
                market.refund(*args, sender=seller)
                del purchases[(course_id, learner.address)]
                touched = bought.token
            elif bought.deadline == 0:
                with ape.reverts(market.NotRefundable):
                    market.refund(*args, sender=seller)
            else:
                with ape.reverts(market.RefundWindowClosed):
                    market.refund(*args, sender=seller)
        elif kind == "warp":
            chain.mine(timestamp=chain.pending_timestamp + step[1])
        elif kind == "release":
            _, which, erc20 = step
            market.release(world["providers"][which], tokens[erc20], sender=owner)
            touched = tokens[erc20]
        elif kind == "withdraw":
            _, who, erc20 = step
            payee = world["payees"][who]
            token = tokens[erc20]
            expected = market.withdrawableOf(payee, token)
            if expected == 0:
                with ape.reverts(market.NothingToWithdraw):
                    market.withdraw(token, sender=payee)
            else:
                tx = market.withdraw(token, sender=payee)
                assert tx.decode_logs(market.Withdrawn)[0].amount == expected
                touched = token
        elif kind == "fee":
            fee_bps = step[1]
            market.setFee(fee_bps, sender=owner)
        # Time jumps and fee changes move no money: checking after the next step covers them.
        if touched is not None:
            _check_conservation(market, usdc, treasury, world, chain, touched)
    for token in tokens.values():
        _check_conservation(market, usdc, treasury, world, chain, token)


def _buy(market, course_id, token, price, buyer):
    if token == ZERO:
        market.purchase(course_id, ZERO, price, ZERO, order_ref("p"), 0, sender=buyer, value=price)
    else:
        market.purchase(course_id, token, price, ZERO, order_ref("p"), 0, sender=buyer)


def _check_conservation(market, usdc, treasury, world, chain, token):
    """Balance == credited + the treasury's fees + escrow rings, and withdrawableOf == its
    parts, for `token`."""
    # Plain web3 calls through cached contract objects: ~16 views per step.
    web3 = chain.provider.web3
    views = _web3_contract(web3, market).functions
    if token == ZERO:
        held = web3.eth.get_balance(market.address)
    else:
        held = _web3_contract(web3, usdc).functions.balanceOf(market.address).call()
    payees = [str(payee.address) for payee in world["payees"]]
    credited = {payee: views.creditedOf(payee, token).call() for payee in payees}
    in_rings = 0
    for seller in world["providers"]:
        seller_address = str(seller.address)
        pending_net, pending_fee = views.escrowOf(seller_address, token).call()
        matured_net, matured_fee = views.releasableOf(seller_address, token).call()
        in_rings += pending_net + pending_fee + matured_net + matured_fee
        assert views.withdrawableOf(seller_address, token).call() == (
            credited[seller_address] + matured_net
        )
    fees = views.feesOf(token).call()
    assert held == sum(credited.values()) + fees + in_rings
    treasury_address = str(treasury.address)
    assert views.withdrawableOf(treasury_address, token).call() == (
        credited[treasury_address] + fees
    )


_WEB3_CONTRACTS: dict[tuple[int, str], Any] = {}


def _web3_contract(web3, contract) -> Any:
    key = (id(web3), str(contract.address))
    if key not in _WEB3_CONTRACTS:
        abi = [item.model_dump(mode="json", by_alias=True) for item in contract.contract_type.abi]
        _WEB3_CONTRACTS[key] = web3.eth.contract(address=contract.address, abi=abi)
    return _WEB3_CONTRACTS[key]
