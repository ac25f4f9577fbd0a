"""Stateful property test of the whole money model (hypothesis RuleBasedStateMachine).

Rules: purchases in the native coin and two ERC-20s (one by EIP-2612 permit), gifts (payer not
learner), refunds, releases and withdrawals by anyone, refund-window changes, fee changes
(0 included), treasury rotations, token de-allowlisting, and time jumps of up to 12 days or of
30-33 days, so examples wrap the 32-day escrow ring several times.

Invariants after every rule, per token: the market's balance equals every credited balance plus
the treasury's fees plus every escrow ring; `withdrawableOf` agrees with its parts (and the
treasury current now is the only one owed the fees); the pending escrow of each provider covers
every purchase still refundable. Each refund the model calls valid succeeds, each withdrawal pays
exactly `withdrawableOf`, and each purchase either succeeds or reverts with the error the model
predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ape
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from market_helpers import DAY, ZERO, fee_of, order_ref
from support.signing import sign_permit

WINDOWS = (0, 3 * DAY, 10 * DAY, 30 * DAY)
PRICES = {"native": (10**16, 3 * 10**16 + 7), "usdc": (9_999, 25 * 10**6), "esn": (10**18, 7)}


@dataclass
class Purchase:
    payer: Any
    token: str
    amount: int
    fee: int
    deadline: int
    provider: Any


@pytest.fixture(scope="module")
def model_world(market, provider, accounts, owner, usdc, esn, treasury):
    """Two providers with four courses; five learners funded in both ERC-20s; two treasuries."""
    providers = [provider, accounts[9]]
    learners = [accounts[5], accounts[6], accounts[8], accounts[3], accounts[2]]
    courses = []
    for i, window in enumerate(WINDOWS):
        seller = providers[i % 2]
        market.createCourse(f"Model {i}", window, sender=seller)
        course_id = int(market.courseCount())
        market.setPrice(course_id, ZERO, PRICES["native"][i % 2], sender=seller)
        market.setPrice(course_id, usdc, PRICES["usdc"][i % 2], sender=seller)
        market.setPrice(course_id, esn, PRICES["esn"][i % 2], sender=seller)
        courses.append((course_id, seller))
    for account in learners:
        for token in (usdc, esn):
            token.mint(account, 10**24, sender=owner)
            token.approve(market, 2**256 - 1, sender=account)
    return {
        "providers": providers,
        "learners": learners,
        "courses": courses,
        "treasuries": [treasury, accounts[10]],
    }


def test_the_money_model_holds_under_every_sequence(
    market, usdc, esn, owner, treasury, model_world, chain
):
    world = model_world
    web3 = chain.provider.web3
    views = web3.eth.contract(
        address=market.address,
        abi=[item.model_dump(mode="json", by_alias=True) for item in market.contract_type.abi],
    ).functions
    tokens = {"native": ZERO, "usdc": usdc.address, "esn": esn.address}
    erc20 = {usdc.address: usdc, esn.address: esn}
    payees = [*world["learners"], *world["providers"], *world["treasuries"]]

    class MoneyModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.snapshot()
            self.purchases: dict[tuple[int, str], Purchase] = {}
            self.fee_bps = int(market.feeBps())
            self.treasury = treasury
            self.allowed = {usdc.address: True, esn.address: True}

        def teardown(self) -> None:
            # The snapshot is valid once: the next example takes a fresh one.
            chain.restore(self.snapshot)

        # ------------------------------------------------------------- purchases

        def _expect_and_buy(self, buyer: Any, recipient: Any, which: int, kind: str, call):
            course_id, seller = world["courses"][which]
            token = tokens[kind]
            key = (course_id, recipient.address)
            price = int(market.priceOf(course_id, token)[0])
            window = int(market.course(course_id).refundWindow)
            if token != ZERO and not self.allowed[token]:
                with ape.reverts(market.TokenNotAllowed):
                    call(course_id, token, price, window)
                return
            if key in self.purchases:
                with ape.reverts(market.AlreadyHasAccess):
                    call(course_id, token, price, window)
                return
            call(course_id, token, price, window)
            deadline = int(market.accessOf(course_id, recipient).refundDeadline)
            self.purchases[key] = Purchase(
                buyer, token, price, fee_of(price, self.fee_bps), deadline, seller
            )

        @rule(
            who=st.integers(0, 4),
            to=st.none() | st.integers(0, 4),
            which=st.integers(0, 3),
            kind=st.sampled_from(["native", "usdc", "esn"]),
        )
        def buy(self, who: int, to: int | None, which: int, kind: str) -> None:
            buyer = world["learners"][who]
            recipient = buyer if to is None else world["learners"][to]
            gift = ZERO if to is None else recipient

            def call(course_id, token, price, window):
                value = price if token == ZERO else 0
                market.purchase(
                    course_id, token, price, gift, order_ref("m"), window,
                    sender=buyer, value=value,
                )  # fmt: skip

            self._expect_and_buy(buyer, recipient, which, kind, call)

        @rule(who=st.integers(0, 4), which=st.integers(0, 3))
        def buy_with_permit(self, who: int, which: int) -> None:
            buyer = world["learners"][who]

            def call(course_id, token, price, window):
                deadline = chain.pending_timestamp + 3600
                v, r, s = sign_permit(
                    buyer.private_key, token=esn, owner=buyer.address, spender=market.address,
                    value=price, deadline=deadline, chain_id=chain.chain_id,
                )  # fmt: skip
                market.purchaseWithPermit(
                    course_id, token, price, ZERO, order_ref("p"), window, deadline, v, r, s,
                    sender=buyer,
                )  # fmt: skip
                # The permit replaced the standing approval and the purchase spent it: approve
                # again, as a wallet would, or a later `buy` in ESN fails on the allowance.
                esn.approve(market, 2**256 - 1, sender=buyer)

            self._expect_and_buy(buyer, buyer, which, "esn", call)

        # ------------------------------------------------------------- refunds and payouts

        @rule(who=st.integers(0, 4), which=st.integers(0, 3))
        def refund(self, who: int, which: int) -> None:
            learner = world["learners"][who]
            course_id, seller = world["courses"][which]
            bought = self.purchases.get((course_id, learner.address))
            if bought is None:
                return
            args = (course_id, learner, bought.payer, bought.token, bought.amount, bought.fee)
            now = chain.pending_timestamp
            if bought.deadline != 0 and abs(now - bought.deadline) <= 2:
                return  # the next block may be a second later: too close to call
            if bought.deadline != 0 and now <= bought.deadline:
                market.refund(*args, sender=seller)  # inside its window: always paid
                del self.purchases[(course_id, learner.address)]
            elif bought.deadline == 0:
                with ape.reverts(market.NotRefundable):
                    market.refund(*args, sender=seller)
            else:
                with ape.reverts(market.RefundWindowClosed):
                    market.refund(*args, sender=seller)

        @rule(which=st.integers(0, 1), kind=st.sampled_from(["native", "usdc", "esn"]))
        def release(self, which: int, kind: str) -> None:
            market.release(world["providers"][which], tokens[kind], sender=owner)

        @rule(who=st.integers(0, len(payees) - 1), kind=st.sampled_from(["native", "usdc", "esn"]))
        def withdraw(self, who: int, kind: str) -> None:
            payee, token = payees[who], tokens[kind]
            expected = int(market.withdrawableOf(payee, token))
            if expected == 0:
                with ape.reverts(market.NothingToWithdraw):
                    market.withdraw(token, sender=payee)
                return
            tx = market.withdraw(token, sender=payee)
            assert tx.decode_logs(market.Withdrawn)[0].amount == expected

        # ------------------------------------------------------------- governance and time

        @rule(seconds=st.integers(0, 12 * DAY))
        def warp(self, seconds: int) -> None:
            chain.mine(timestamp=chain.pending_timestamp + seconds)

        @rule(seconds=st.integers(30 * DAY, 33 * DAY))
        def jump_a_month(self, seconds: int) -> None:
            # About a ring's length: each example wraps the 32-day ring a few times.
            chain.mine(timestamp=chain.pending_timestamp + seconds)

        @rule(bps=st.sampled_from([0, 1, 250, 500, 2_000]))
        def set_fee(self, bps: int) -> None:
            market.setFee(bps, sender=owner)
            self.fee_bps = bps

        @rule(which=st.integers(0, 1))
        def rotate_treasury(self, which: int) -> None:
            target = world["treasuries"][which]
            market.setTreasury(target, sender=owner)
            self.treasury = target

        @rule(which=st.integers(0, 3), window=st.sampled_from(WINDOWS))
        def set_window(self, which: int, window: int) -> None:
            course_id, seller = world["courses"][which]
            market.setRefundWindow(course_id, window, sender=seller)

        @rule(kind=st.sampled_from(["usdc", "esn"]), allowed=st.booleans())
        def allow_token(self, kind: str, allowed: bool) -> None:
            market.setTokenAllowed(tokens[kind], allowed, sender=owner)
            self.allowed[tokens[kind]] = allowed

        # ------------------------------------------------------------- invariants

        @invariant()
        def money_is_conserved_and_refunds_are_covered(self) -> None:
            now = chain.pending_timestamp
            for token in tokens.values():
                held = (
                    web3.eth.get_balance(market.address)
                    if token == ZERO
                    else erc20[token].balanceOf(market.address)
                )
                credited = {
                    str(p.address): views.creditedOf(p.address, token).call() for p in payees
                }
                fees = views.feesOf(token).call()
                in_rings = 0
                for seller in world["providers"]:
                    pending = views.escrowOf(seller.address, token).call()
                    matured = views.releasableOf(seller.address, token).call()
                    in_rings += sum(pending) + sum(matured)
                    assert views.withdrawableOf(seller.address, token).call() == (
                        credited[str(seller.address)] + matured[0]
                    )
                    refundable = sum(
                        p.amount
                        for p in self.purchases.values()
                        if p.provider == seller and p.token == token and p.deadline >= now
                    )
                    assert sum(pending) + sum(matured) >= refundable
                assert held == sum(credited.values()) + fees + in_rings
                for candidate in world["treasuries"]:
                    owed = credited[str(candidate.address)]
                    if candidate == self.treasury:
                        owed += fees
                    assert views.withdrawableOf(candidate.address, token).call() == owed

    run_state_machine_as_test(
        MoneyModel,
        settings=settings(
            max_examples=6,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
