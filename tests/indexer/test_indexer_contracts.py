"""End to end with the real contracts: deploy, buy, refund, certify; the indexer follows."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import select
from support.indexer import active_entitlements, course_id_of, make_indexer, orders
from web3 import Web3

from backend.catalog.models import TokenPrice
from backend.certificates.models import Certificate, CertificateStatus
from backend.chain.artifacts import ABI_DIR, BYTECODE_DIR
from backend.chain.deployment import load_deployment
from backend.orders.models import OrderStatus
from indexer.decoding import LogDecoder
from indexer.handlers import BackendSink

pytestmark = pytest.mark.skipif(
    not (ABI_DIR / "CourseMarket.json").exists()
    or not (BYTECODE_DIR / "CourseMarket.bin").exists(),
    reason="contract artifacts not exported yet",
)

KEYS = {
    "admin": "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "operator": "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "provider": "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "learner": "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
}
NATIVE = "0x" + "00" * 20


def send(w3: Web3, key: str, fn, value: int = 0) -> dict:
    acct = Account.from_key(key)
    tx = fn.build_transaction(
        {
            "from": acct.address,
            "value": value,
            "nonce": w3.eth.get_transaction_count(acct.address, "pending"),
        }
    )
    raw = acct.sign_transaction(tx).raw_transaction
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(raw), timeout=30, poll_latency=0.01
    )
    assert receipt["status"] == 1
    return dict(receipt)


def test_real_contracts_purchase_refund_certificate(db, anvil, tmp_path):
    from backend.chain.deploy import deploy_all

    data = deploy_all(
        rpc_url=anvil.url, network="test", deployments_dir=tmp_path,
        admin_key=KEYS["admin"], operator_key=KEYS["operator"], provider_key=KEYS["provider"],
        learner_keys=[KEYS["learner"]], demo=True,
    )  # fmt: skip
    deployment = load_deployment(tmp_path / "test.json")
    market_abi = deployment.contract("CourseMarket").load_abi()
    cert_abi = deployment.contract("CourseCertificate").load_abi()
    assert market_abi and cert_abi, "the deployment names its ABIs"
    w3 = anvil.w3
    market = w3.eth.contract(address=deployment.market, abi=market_abi)
    cert = w3.eth.contract(address=deployment.certificate, abi=cert_abi)
    learner = Account.from_key(KEYS["learner"]).address

    ix = make_indexer(
        db,
        anvil,
        deployment.addresses,
        deployment.deploy_block,
        sink=BackendSink(chain_id=anvil.chain_id, confirmations=2),
    )
    ix.decoder = LogDecoder.for_deployment(deployment)
    ix.catch_up()
    course_ids = data["demo"]["courses"]
    first = course_id_of(db, course_ids[0])
    with db.sessions() as s:
        prices = s.scalars(select(TokenPrice).where(TokenPrice.course_id == first)).all()
    eth_price = next(p.price for p in prices if p.token == NATIVE)

    # Buy course 1 with ETH.
    send(w3, KEYS["learner"],
         market.functions.purchase(course_ids[0], NATIVE, eth_price, NATIVE, b"\0" * 32, 0),
         value=eth_price)  # fmt: skip
    ix.catch_up()
    assert active_entitlements(db) == {(first, learner): 1}
    [order] = orders(db)
    assert order.status == OrderStatus.PAID and order.amount == eth_price and order.fee > 0

    # The provider refunds it.
    send(w3, KEYS["provider"], market.functions.refund(
        course_ids[0], learner, learner, NATIVE, order.amount, order.fee))  # fmt: skip
    ix.catch_up()
    assert active_entitlements(db) == {}
    assert orders(db)[0].status == OrderStatus.REFUNDED

    # The platform issuer certifies the learner for course 2 (a grant first: certificates need
    # access on-chain).
    send(w3, KEYS["operator"], market.functions.grantAccess(
        course_ids[1], learner, 3, b"\x07" * 32))  # fmt: skip
    ix.catch_up()
    record_hash = b"\x42" * 28
    send(w3, KEYS["operator"], cert.functions.mint(learner, course_ids[1], record_hash))
    ix.catch_up()
    with db.sessions() as s:
        [c] = s.scalars(select(Certificate)).all()
    assert c.status == CertificateStatus.MINTED
    assert c.token_id == (course_ids[1] << 160) | int(learner, 16)
    assert c.record_hash == "0x" + record_hash.hex()
