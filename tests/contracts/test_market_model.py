"""Stateful property test of the whole money model (hypothesis RuleBasedStateMachine).

Rules: purchases in the native coin and three ERC-20s (one by EIP-2612 permit), gifts (payer not
learner), purchases in an ERC-777-style token whose buyer's sender hook re-enters the market in
the middle of `transferFrom` (release, withdraw, a nested purchase, a refund as the provider's
delegate), refunds, releases and withdrawals by anyone, refund-window changes, fee changes
(0 included), treasury rotations, token de-allowlisting, and time jumps of up to 12 days or of
30-33 days, so examples wrap the 32-day escrow ring several times.

Invariants after every rule, per token: the market's balance equals every credited balance plus
the treasury's fees plus every escrow ring; `withdrawableOf` agrees with its parts (and the
treasury current now is the only one owed the fees); the pending escrow of each provider covers
every purchase still refundable. Each refund the model calls valid succeeds, each withdrawal pays
exactly `withdrawableOf`, and each purchase (and each re-entry from a hook) either succeeds or
reverts with the error the model predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ape
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from market_helpers import DAY, ZERO, fee_of, order_ref
from support.signing import sign_permit

WINDOWS = (0, 3 * DAY, 10 * DAY, 30 * DAY)
PRICES = {
    "native": (10**16, 3 * 10**16 + 7),
    "usdc": (9_999, 25 * 10**6),
    "esn": (10**18, 7),
    "cbt": (3 * 10**17 + 1, 10**6),
}
KINDS = ["native", "usdc", "esn", "cbt"]
MAX = 2**256 - 1


@dataclass
class Purchase:
    payer: Any
    token: str
    amount: int
    fee: int
    deadline: int
    provider: Any


@pytest.fixture(scope="module")
def model_world(market, provider, accounts, owner, usdc, esn, treasury, project):
    """Two providers with four courses; five learners funded in every ERC-20; two treasuries;
    an attacker contract that buys with the callback token, its sender hook registered, and is
    a delegate of the first provider."""
    providers = [provider, accounts[9]]
    learners = [accounts[5], accounts[6], accounts[8], accounts[3], accounts[2]]
    cbt = owner.deploy(project.CallbackToken, "Callback", "CBT")
    market.setTokenAllowed(cbt, True, sender=owner)
    erc20 = {"usdc": usdc, "esn": esn, "cbt": cbt}
    courses = []
    for i, window in enumerate(WINDOWS):
        seller = providers[i % 2]
        market.createCourse(f"Model {i}", window, sender=seller)
        course_id = int(market.courseCount())
        market.setPrice(course_id, ZERO, PRICES["native"][i % 2], sender=seller)
        for kind, token in erc20.items():
            market.setPrice(course_id, token, PRICES[kind][i % 2], sender=seller)
        courses.append((course_id, seller))
    for account in learners:
        for token in erc20.values():
            token.mint(account, 10**24, sender=owner)
            token.approve(market, MAX, sender=account)
    attacker = owner.deploy(project.ReentrantPayee)
    owner.transfer(attacker, 10**20)
    cbt.mint(attacker, 10**24, sender=owner)
    attacker.execute(cbt, cbt.approve.encode_input(market, MAX), sender=owner)
    attacker.execute(cbt, cbt.setSenderHook.encode_input(attacker), sender=owner)
    market.setDelegate(attacker, True, sender=providers[0])
    return {
        "providers": providers,
        "learners": learners,
        "courses": courses,
        "treasuries": [treasury, accounts[10]],
        "cbt": cbt,
        "attacker": attacker,
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
    cbt, attacker = world["cbt"], world["attacker"]
    tokens = {"native": ZERO, "usdc": usdc.address, "esn": esn.address, "cbt": cbt.address}
    erc20 = {usdc.address: usdc, esn.address: esn, cbt.address: cbt}
    payees = [*world["learners"], *world["providers"], *world["treasuries"]]
    # The attacker is a contract: it withdraws only from its hook, but is owed money like anyone.
    holders = [*payees, attacker]

    def _gift(recipient: Any) -> Any:
        """The purchase's recipient argument when the attacker pays for `recipient`."""
        return ZERO if recipient == attacker else recipient

    class MoneyModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.snapshot()
            self.purchases: dict[tuple[int, str], Purchase] = {}
            self.fee_bps = int(market.feeBps())
            self.treasury = treasury
            self.allowed = {usdc.address: True, esn.address: True, cbt.address: True}

        def teardown(self) -> None:
            # The snapshot is valid once: the next example takes a fresh one.
            chain.restore(self.snapshot)

        # ------------------------------------------------------------- purchases

        def _purchase_error(self, course_id: int, recipient: Any, token: str) -> Any:
            """The error a purchase must revert with now, or None if it must succeed."""
            if token != ZERO and not self.allowed[token]:
                return market.TokenNotAllowed
            if (course_id, recipient.address) in self.purchases:
                return market.AlreadyHasAccess
            return None

        def _record(self, buyer: Any, recipient: Any, which: int, token: str) -> None:
            course_id, seller = world["courses"][which]
            price = int(market.priceOf(course_id, token)[0])
            deadline = int(market.accessOf(course_id, recipient).refundDeadline)
            self.purchases[(course_id, recipient.address)] = Purchase(
                buyer, token, price, fee_of(price, self.fee_bps), deadline, seller
            )

        def _terms(self, which: int, token: str) -> tuple[int, int, int]:
            course_id, _ = world["courses"][which]
            price = int(market.priceOf(course_id, token)[0])
            return course_id, price, int(market.course(course_id).refundWindow)

        def _expect_and_buy(self, buyer: Any, recipient: Any, which: int, kind: str, call):
            token = tokens[kind]
            course_id, price, window = self._terms(which, token)
            error = self._purchase_error(course_id, recipient, token)
            if error is not None:
                with ape.reverts(error):
                    call(course_id, token, price, window)
                return
            call(course_id, token, price, window)
            self._record(buyer, recipient, which, token)

        @rule(
            who=st.integers(0, 4),
            to=st.none() | st.integers(0, 4),
            which=st.integers(0, 3),
            kind=st.sampled_from(KINDS),
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
                esn.approve(market, MAX, sender=buyer)

            self._expect_and_buy(buyer, buyer, which, "esn", call)

        # ------------------------------------------------------------- refunds and payouts

        def _refund_error(self, bought: Purchase) -> Any:
            """The error a refund of `bought` sent in the next block must revert with, None if it
            must be paid, or False if the deadline is too close to call (the next block may be a
            second later)."""
            now = chain.pending_timestamp
            if bought.deadline != 0 and abs(now - bought.deadline) <= 2:
                return False
            if bought.deadline == 0:
                return market.NotRefundable
            return None if now <= bought.deadline else market.RefundWindowClosed

        @rule(who=st.integers(0, 5), which=st.integers(0, 3))
        def refund(self, who: int, which: int) -> None:
            learner = [*world["learners"], attacker][who]
            course_id, seller = world["courses"][which]
            bought = self.purchases.get((course_id, learner.address))
            if bought is None:
                return
            args = (course_id, learner, bought.payer, bought.token, bought.amount, bought.fee)
            error = self._refund_error(bought)
            if error is None:
                market.refund(*args, sender=seller)  # inside its window: always paid
                del self.purchases[(course_id, learner.address)]
            elif error is not False:
                with ape.reverts(error):
                    market.refund(*args, sender=seller)

        # ------------------------------------------------------------- re-entry from a hook

        @rule(
            which=st.integers(0, 3),
            to=st.integers(0, 5),
            # A nested purchase is the re-entry most likely to break the books: drawn twice.
            reentry=st.sampled_from(["release", "withdraw", "buy", "buy", "refund"]),
            kind=st.sampled_from(["native", "cbt"]),
            other=st.integers(0, 3),
            to2=st.integers(0, 5),
            pick=st.integers(0, 5),
        )
        def buy_with_reentrant_hook(
            self, which: int, to: int, reentry: str, kind: str, other: int, to2: int, pick: int
        ) -> None:
            """The attacker buys in the callback token (for itself or as a gift); its hook, run
            inside the market's `transferFrom`, re-enters the market. The ERC-20 pull holds no
            guard (the purchase's state is final by then): a re-entry that moves the market's
            balance of the token breaks the balance-delta check and reverts everything; any
            other re-entry is an ordinary call and must leave the model's books right."""
            recipients = [*world["learners"], attacker]
            first, second = recipients[to], recipients[to2]
            token = tokens[kind]
            course_id, price, window = self._terms(which, cbt.address)
            outer = market.purchase.encode_input(
                course_id, cbt.address, price, _gift(first), order_ref("h"), window
            )
            error = self._purchase_error(course_id, first, cbt.address)
            inner_ok, whole_reverts, refunded, nested = False, False, None, None
            value = 0
            if reentry == "release":
                data = market.release.encode_input(world["providers"][other % 2], token)
                inner_ok = True
            elif reentry == "withdraw":
                data = market.withdraw.encode_input(token)
                inner_ok = int(market.withdrawableOf(attacker, token)) > 0
                whole_reverts = inner_ok and token == cbt.address
            elif reentry == "buy":
                course2, value, window2 = self._terms(other, token)
                data = market.purchase.encode_input(
                    course2, token, value, _gift(second), order_ref("n"), window2
                )
                value = value if token == ZERO else 0
                # The outer purchase's access is stored before the pull: buying it again fails.
                inner_ok = (course2, second) != (course_id, first) and (
                    self._purchase_error(course2, second, token) is None
                )
                whole_reverts = inner_ok and token == cbt.address
                nested = other
            else:  # a refund, as the first provider's delegate, of one of its purchases
                own = [
                    (key, p)
                    for key, p in self.purchases.items()
                    if p.provider == world["providers"][0]
                ]
                if not own:
                    return
                key, bought = own[pick % len(own)]
                refund_error = self._refund_error(bought)
                if refund_error is False:
                    return
                data = market.refund.encode_input(
                    key[0], key[1], bought.payer, bought.token, bought.amount, bought.fee
                )
                inner_ok, refunded = refund_error is None, key
            attacker.setReentry(market, data, value, sender=owner)

            outcome = (
                "refused"
                if error is not None
                else "all reverted"
                if whole_reverts
                else ("re-entered" if inner_ok else "re-entry failed")
            )
            event(f"hook {reentry} {kind}: {outcome}")  # --hypothesis-show-statistics
            if error is not None:  # refused before the pull: the hook never runs
                with ape.reverts(error):
                    attacker.execute(market, outer, sender=owner)
                return
            if whole_reverts:
                with ape.reverts(market.TransferShortfall):
                    attacker.execute(market, outer, sender=owner)
                return
            tx = attacker.execute(market, outer, sender=owner)
            # The hook's attempt is the outermost, so its event is the last one (a withdrawal
            # to the attacker runs `receive`, whose nested attempt is refused by the guard).
            attempts = tx.decode_logs(attacker.ReentryAttempted)
            assert attempts[-1].succeeded == inner_ok
            self._record(attacker, first, which, cbt.address)
            if inner_ok and nested is not None:
                self._record(attacker, second, nested, token)
            if inner_ok and refunded is not None:
                del self.purchases[refunded]

        @rule(which=st.integers(0, 1), kind=st.sampled_from(KINDS))
        def release(self, which: int, kind: str) -> None:
            market.release(world["providers"][which], tokens[kind], sender=owner)

        @rule(who=st.integers(0, len(payees) - 1), kind=st.sampled_from(KINDS))
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

        @rule(kind=st.sampled_from(KINDS[1:]), allowed=st.booleans())
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
                    str(p.address): views.creditedOf(p.address, token).call() for p in holders
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
