"""The gas figures of the contracts' hot paths, measured one way for the report and the tests.

``measure_gas_paths`` deploys fresh contracts on the connected local chain and returns the
``gas_used`` of one transaction per path. ``scripts/gas_report.py`` writes the result to
docs/gas.json; tests/contracts/test_gas.py asserts the targets and that docs/gas.json is not
stale. Both import this module, so the two can never measure different things.

Warm means what a busy course sees: the second purchase of the same provider's course on the
same day by another learner (the escrow bucket of the day already exists).
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from market_helpers import (
    CARD,
    DAY,
    ESN_PRICE,
    FEE_BPS,
    NATIVE_PRICE,
    REFUND_WINDOW,
    ZERO,
    fee_of,
    order_ref,
)
from support.signing import sign_permit, sign_voucher

# Targets from the spec (whole-transaction gas on anvil).
TARGETS = {
    "purchase_native_warm": 60_000,
    "purchase_erc20_warm": 80_000,
    "certificate_mint_new_holder": 110_000,
}

KEYS = (
    "purchase_native_first",
    "purchase_native_warm",
    "purchase_erc20_first",
    "purchase_erc20_warm",
    "purchase_permit_warm",
    "grant_access_card",
    "refund",
    "release",
    "withdraw",
    "certificate_mint_new_holder",
    "certificate_claim_voucher",
    "certificate_revoke",
)


def measure_gas_paths(accounts: Any, project: Any, chain: Any) -> dict[str, int]:
    """Deploy fresh contracts and measure every hot path.

    Args:
        accounts: At least 10 funded accounts (Ape test accounts).
        project: The Ape project (for the contract containers).
        chain: Ape's chain manager (time travel, chain id).

    Returns:
        Gas used per path, keyed as in ``KEYS``.
    """
    admin, treasury, operator, issuer, provider = accounts[0:5]
    learners = accounts[5:10]
    gas: dict[str, int] = {}

    market = admin.deploy(project.CourseMarket, admin, treasury, FEE_BPS, 3 * DAY)
    certificate = admin.deploy(project.CourseCertificate, admin, market)
    esn = admin.deploy(project.TestToken, "Esn Token", "ESN", 18)
    market.grantRole(market.OPERATOR_ROLE(), operator, sender=admin)
    certificate.grantRole(certificate.ISSUER_ROLE(), issuer, sender=admin)
    market.setTokenAllowed(esn, True, sender=admin)

    market.createCourse("Solidity from Zero", REFUND_WINDOW, sender=provider)
    course_id = market.courseCount()
    market.createCourse("Zero-Knowledge Proofs in Practice", REFUND_WINDOW, sender=provider)
    second_id = market.courseCount()
    for cid in (course_id, second_id):
        market.setPrice(cid, ZERO, NATIVE_PRICE, sender=provider)
        market.setPrice(cid, esn, ESN_PRICE, sender=provider)
    for learner in learners:
        esn.mint(learner, 10 * ESN_PRICE, sender=admin)

    # Start on a fresh day at 01:00 UTC so every purchase below falls on the same day.
    now = chain.pending_timestamp
    chain.mine(timestamp=(now // DAY + 1) * DAY + 3600)

    def native(learner: Any, cid: int, label: str) -> Any:
        return market.purchase(
            cid, ZERO, NATIVE_PRICE, ZERO, order_ref(label), 0, sender=learner, value=NATIVE_PRICE
        )

    def erc20(learner: Any, cid: int, label: str) -> Any:
        esn.approve(market, ESN_PRICE, sender=learner)
        return market.purchase(cid, esn, ESN_PRICE, ZERO, order_ref(label), 0, sender=learner)

    gas["purchase_native_first"] = native(learners[0], course_id, "n1").gas_used
    gas["purchase_native_warm"] = native(learners[1], course_id, "n2").gas_used
    gas["purchase_erc20_first"] = erc20(learners[2], course_id, "e1").gas_used
    gas["purchase_erc20_warm"] = erc20(learners[3], course_id, "e2").gas_used

    deadline = chain.pending_timestamp + 3600
    v, r, s = sign_permit(
        learners[4].private_key,
        token=esn,
        owner=learners[4].address,
        spender=market.address,
        value=ESN_PRICE,
        deadline=deadline,
        chain_id=chain.chain_id,
    )
    gas["purchase_permit_warm"] = market.purchaseWithPermit(
        course_id, esn, ESN_PRICE, ZERO, order_ref("p1"), 0, deadline, v, r, s, sender=learners[4]
    ).gas_used

    gas["grant_access_card"] = market.grantAccess(
        second_id, learners[0], CARD, order_ref("card-1"), sender=operator
    ).gas_used

    gas["refund"] = market.refund(
        course_id,
        learners[1],
        learners[1],
        ZERO,
        NATIVE_PRICE,
        fee_of(NATIVE_PRICE),
        sender=provider,
    ).gas_used

    # After the refund windows: the treasury releases the ESN escrow; the provider withdraws
    # native, which releases its native ring in the same transaction.
    chain.mine(timestamp=chain.pending_timestamp + REFUND_WINDOW + DAY)
    gas["release"] = market.release(provider, esn, sender=treasury).gas_used
    gas["withdraw"] = market.withdraw(ZERO, sender=provider).gas_used

    record_hash = keccak(text="record-1")[:28]
    gas["certificate_mint_new_holder"] = certificate.mint(
        learners[2], course_id, record_hash, sender=issuer
    ).gas_used

    voucher_deadline = chain.pending_timestamp + DAY
    signature = sign_voucher(
        issuer.private_key,
        certificate=certificate.address,
        learner=learners[3].address,
        course_id=course_id,
        record_hash=keccak(text="record-2")[:28],
        deadline=voucher_deadline,
        chain_id=chain.chain_id,
    )
    gas["certificate_claim_voucher"] = certificate.claim(
        course_id, keccak(text="record-2")[:28], voucher_deadline, signature, sender=learners[3]
    ).gas_used

    token_id = certificate.tokenIdFor(learners[2], course_id)
    gas["certificate_revoke"] = certificate.revoke(token_id, 1, sender=issuer).gas_used

    return {key: int(gas[key]) for key in KEYS}
