"""End to end against a real anvil: every payment rail, refunds and certificates, each step
observed through the HTTP API of the running stack (API, indexer, worker, Stripe fake).

Each test uses fresh wallets, so the tests share one stack without depending on each other's
order. Wallet actions (purchase, approve, permit, refund, claim) are signed here with eth-account
and sent to anvil, as the web app's wallet would; everything else goes through the API.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from eth_account import Account
from support.procs import wait_for
from support.stack import (
    BOTH_CHAINS,
    NATIVE,
    ApiUser,
    Chain,
    E2EStack,
    record_hash,
)
from web3 import Web3
from web3.logs import DISCARD

from backend.access.models import OnchainSource
from backend.chain.artifacts import CERTIFICATE_FIELDS
from backend.core.dev_accounts import DEMO_KEYS

pytestmark = [pytest.mark.chain, pytest.mark.slow]

ETH_COURSE = "Solidity from Zero"  # ETH, ESN, USDC; card 49.00
ESN_COURSE = "Designing Token Economies"  # ESN and USDC only
PERMIT_COURSE = "Zero-Knowledge Proofs in Practice"  # ETH, ESN, USDC; card 99.00
GIFT_COURSE = "Smart Contract Security Review"  # ETH and USDC; 3 lessons
CARD_COURSE = "Zero-Knowledge Proofs in Practice"
FREE_COURSE = "Ethereum for Everyone"  # ETH at price 0, no card price

# ------------------------------------------------------------------ helpers


def assert_no_floats(body: Any, where: str = "body") -> None:
    """Money is integer base units sent as strings: no JSON number may be a float."""
    if isinstance(body, float):
        raise AssertionError(f"{where} is a float: {body!r}")
    if isinstance(body, dict):
        for key, value in body.items():
            assert_no_floats(value, f"{where}.{key}")
    elif isinstance(body, list):
        for i, value in enumerate(body):
            assert_no_floats(value, f"{where}[{i}]")


def price_in(course: dict[str, Any], token: str) -> int:
    """The course's price in `token` as the API lists it (a string of base units)."""
    for price in course["prices"]:
        if price["token"]["address"].lower() == token.lower():
            assert isinstance(price["price"], str), price
            return int(price["price"])
    raise AssertionError(f"{course['title']} has no price in {token}")


def quote(user: ApiUser, course: dict[str, Any], token: str, recipient: str | None = None) -> Any:
    """POST /orders/crypto on the course's chain: a pending order and the transactions to sign."""
    body: dict[str, Any] = {"courseId": course["id"], "token": token, "chainId": course["chainId"]}
    if recipient is not None:
        body["recipient"] = recipient
    reply = user.post("/api/v1/orders/crypto", body, expect=201)
    assert_no_floats(reply, "quote")
    return reply


def send_api_tx(chain: Chain, user: ApiUser, tx: dict[str, Any]) -> dict[str, Any]:
    """Sign and send an unsigned transaction the API handed out (to, data, value in wei)."""
    assert tx["chainId"] == chain.chain_id
    assert isinstance(tx["value"], str), tx
    return chain.send(user.account, tx["to"], tx["data"], int(tx["value"]))


def wait_access(user: ApiUser, course: dict[str, Any], address: str | None = None) -> Any:
    """Poll the access check until it says yes (the indexer has seen the purchase)."""
    who = address or user.address
    return wait_for(
        lambda: (a := user.access(course["id"], who))["hasAccess"] and a,
        f"GET /courses/{course['id']}/access to say true for {who}",
    )


def wait_order(user: ApiUser, order_id: str, status: str) -> Any:
    return wait_for(
        lambda: (o := user.order(order_id))["status"] == status and o,
        f"order {order_id} to become {status}",
    )


def buy_with_eth(chain: Chain, user: ApiUser, course: dict[str, Any]) -> Any:
    """Quote, pay with ether from the user's wallet, wait until the API has the order paid."""
    reply = quote(user, course, NATIVE)
    send_api_tx(chain, user, reply["transaction"])
    wait_access(user, course)
    return wait_order(user, reply["order"]["id"], "paid")


def expected_fee(chain: Chain, amount: int) -> int:
    return amount * int(chain.market.functions.feeBps().call()) // 10_000


def assert_paid_order(
    order: dict[str, Any], *, chain: Chain, receipt: dict[str, Any], amount: int, token: str
) -> None:
    """An order the indexer marked paid from this very transaction, at the exact price."""
    assert_no_floats(order, "order")
    assert order["status"] == "paid"
    assert order["rail"] == "crypto"
    assert order["amount"] == str(amount)
    assert order["fee"] == str(expected_fee(chain, amount))
    assert order["token"]["address"] == token
    assert order["txHash"] == receipt["transactionHash"].to_0x_hex()
    assert order["blockNumber"] == receipt["blockNumber"]
    assert order["chainId"] == chain.chain_id
    # The purchase carried the quote's orderRef, so the quote itself was paid: no anomalies.
    assert order["anomalies"] == []
    assert order["paidAt"] is not None


def complete_lessons(user: ApiUser, course: dict[str, Any], positions: range) -> Any:
    """Open and complete lessons through the learning API; returns the last progress body."""
    progress = None
    for n in positions:
        lesson = user.get(f"/api/v1/courses/{course['id']}/lessons/{n}")
        assert lesson["position"] == n and lesson["body"]
        progress = user.post(f"/api/v1/courses/{course['id']}/lessons/{n}/complete")
        assert progress["completed"] == n
        assert progress["total"] == course["lessonCount"]
    return progress


def certificate_of(user: ApiUser, course: dict[str, Any]) -> dict[str, Any] | None:
    for cert in user.certificates():
        if cert["courseId"] == course["id"]:
            return cert
    return None


def token_id(onchain_course_id: int, learner: str) -> int:
    """`courseId << 160 | uint160(learner)`, as the certificate contract numbers tokens."""
    return (onchain_course_id << 160) | int(learner, 16)


# ------------------------------------------------------------------ crypto purchases


@BOTH_CHAINS
def test_eth_purchase_grants_access_and_marks_the_quoted_order_paid(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser
) -> None:
    course = catalog[ETH_COURSE]
    onchain_id = course["onchainId"]
    price = price_in(course, NATIVE)
    # The API mirrors the chain's price exactly.
    assert chain.market.functions.priceOf(onchain_id, NATIVE).call() == [price, True]
    assert learner.access(course["id"]) == {"hasAccess": False, "source": None, "since": None}

    reply = quote(learner, course, NATIVE)
    order = reply["order"]
    assert (order["status"], order["amount"], order["buyer"]) == (
        "pending",
        str(price),
        learner.address,
    )
    assert reply["approval"] is None, "ether needs no approval"
    tx = reply["transaction"]
    assert (tx["to"], tx["value"]) == (chain.address("CourseMarket"), str(price))
    fn, args = chain.market.decode_function_input(tx["data"])
    assert fn.fn_name == "purchase"
    assert args == {
        "courseId": onchain_id,
        "token": NATIVE,
        "maxAmount": price,
        "recipient": learner.address,
        "orderRef": bytes.fromhex(order["orderRef"][2:]),
        "quotedWindow": order["quotedRefundWindow"],
    }

    receipt = send_api_tx(chain, learner, tx)

    access = wait_access(learner, course)
    assert access["source"] == "crypto" and access["since"]
    paid = wait_order(learner, order["id"], "paid")
    assert_paid_order(paid, chain=chain, receipt=receipt, amount=price, token=NATIVE)
    mine = learner.get("/api/v1/me/orders")
    assert_no_floats(mine, "my orders")
    assert [o["id"] for o in mine] == [order["id"]]
    assert chain.market.functions.hasAccess(onchain_id, learner.address).call() is True


@BOTH_CHAINS
def test_erc20_purchase_approves_exactly_the_price_then_pays(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser
) -> None:
    course = catalog[ESN_COURSE]
    esn = chain.token("ESN")
    price = price_in(course, esn.address)
    chain.call(learner.account, esn.functions.mint(learner.address, price))  # anyone may mint

    reply = quote(learner, course, esn.address)
    approval, tx = reply["approval"], reply["transaction"]
    assert approval is not None and approval["to"] == esn.address and approval["value"] == "0"
    fn, args = esn.decode_function_input(approval["data"])
    assert (fn.fn_name, args) == (
        "approve",
        {"spender": chain.address("CourseMarket"), "value": price},
    )
    assert tx["value"] == "0"

    send_api_tx(chain, learner, approval)
    receipt = send_api_tx(chain, learner, tx)

    wait_access(learner, course)
    paid = wait_order(learner, reply["order"]["id"], "paid")
    assert_paid_order(paid, chain=chain, receipt=receipt, amount=price, token=esn.address)
    assert esn.functions.balanceOf(learner.address).call() == 0
    assert esn.functions.allowance(learner.address, chain.address("CourseMarket")).call() == 0


@BOTH_CHAINS
def test_permit_purchase_pays_in_one_transaction_without_approve(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser
) -> None:
    course = catalog[PERMIT_COURSE]
    esn = chain.token("ESN")
    market = chain.address("CourseMarket")
    price = price_in(course, esn.address)
    chain.call(learner.account, esn.functions.mint(learner.address, price))

    order = quote(learner, course, esn.address)["order"]
    deadline = chain.latest_timestamp() + 3600
    v, r, s = chain.sign_permit(learner.account, esn, market, int(order["amount"]), deadline)
    permit_purchase = chain.market.functions.purchaseWithPermit(
        course["onchainId"],
        esn.address,
        int(order["amount"]),
        NATIVE,  # the caller
        bytes.fromhex(order["orderRef"][2:]),
        order["quotedRefundWindow"],  # the quote's refund terms bind the market
        deadline,
        v,
        r,
        s,
    )
    nonce_before = chain.w3.eth.get_transaction_count(learner.address)
    receipt = chain.call(learner.account, permit_purchase)

    assert chain.w3.eth.get_transaction_count(learner.address) == nonce_before + 1
    wait_access(learner, course)
    paid = wait_order(learner, order["id"], "paid")
    assert_paid_order(paid, chain=chain, receipt=receipt, amount=price, token=esn.address)
    assert paid["recipient"] == learner.address
    assert esn.functions.nonces(learner.address).call() == 1, "the permit was used"
    assert esn.functions.allowance(learner.address, market).call() == 0


@BOTH_CHAINS
def test_gift_gives_access_to_the_recipient_not_the_buyer(
    chain: Chain, catalog: dict[str, dict[str, Any]], buyer: ApiUser, recipient: ApiUser
) -> None:
    course = catalog[GIFT_COURSE]
    price = price_in(course, NATIVE)

    reply = quote(buyer, course, NATIVE, recipient=recipient.address)
    assert reply["order"]["recipient"] == recipient.address
    _, args = chain.market.decode_function_input(reply["transaction"]["data"])
    assert args["recipient"] == recipient.address
    receipt = send_api_tx(chain, buyer, reply["transaction"])

    wait_access(buyer, course, recipient.address)
    assert buyer.access(course["id"])["hasAccess"] is False
    # The recipient sees the gift among its orders and may read it; the buyer may not.
    paid = wait_order(recipient, reply["order"]["id"], "paid")
    assert_paid_order(paid, chain=chain, receipt=receipt, amount=price, token=NATIVE)
    assert (paid["buyer"], paid["recipient"]) == (buyer.address, recipient.address)
    assert [o["id"] for o in recipient.get("/api/v1/me/orders")] == [paid["id"]]
    assert recipient.get(f"/api/v1/courses/{course['id']}/lessons/1")["position"] == 1
    denied = buyer.request("GET", f"/api/v1/courses/{course['id']}/lessons/1", expect=403)
    assert denied["error"]["code"] == "not_entitled"
    assert chain.market.functions.hasAccess(course["onchainId"], recipient.address).call()
    assert not chain.market.functions.hasAccess(course["onchainId"], buyer.address).call()


@BOTH_CHAINS
def test_free_course_is_claimed_on_chain_at_price_zero(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser
) -> None:
    course = catalog[FREE_COURSE]
    assert price_in(course, NATIVE) == 0

    reply = quote(learner, course, NATIVE)
    assert reply["order"]["amount"] == "0"
    assert reply["transaction"]["value"] == "0"
    balance_before = chain.w3.eth.get_balance(learner.address)
    receipt = send_api_tx(chain, learner, reply["transaction"])

    access = wait_access(learner, course)
    assert access["source"] == "crypto"
    paid = wait_order(learner, reply["order"]["id"], "paid")
    assert_paid_order(paid, chain=chain, receipt=receipt, amount=0, token=NATIVE)
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.w3.eth.get_balance(learner.address) == balance_before - gas, "only gas was paid"
    record = chain.market.functions.accessOf(course["onchainId"], learner.address).call()
    assert record[0] == OnchainSource.PURCHASE
    assert record[2] == 0, "a free claim has no refund deadline"


def test_free_course_is_claimed_through_the_api_once_its_card_price_is_zero(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser, provider: ApiUser
) -> None:
    """The card rail's free enrolment: no wallet transaction, just the signed-in claim."""
    course = catalog[FREE_COURSE]
    path = f"/api/v1/provider/courses/{course['id']}/fiat-price"
    # No card price yet: the claim is refused rather than silently granted.
    refused = learner.request("POST", f"/api/v1/courses/{course['id']}/claim", json={}, expect=409)
    assert refused["error"]["code"] == "not_free"
    updated = provider.request("PUT", path, json={"amount": "0", "currency": "usd"})
    try:
        assert updated["fiatPrice"] == {"amount": "0", "currency": "usd"}
        claimed = learner.post(f"/api/v1/courses/{course['id']}/claim")
        assert claimed["hasAccess"] is True and claimed["source"] == "free"
        assert learner.access(course["id"])["source"] == "free"
        entitlements = learner.get("/api/v1/me/entitlements")
        assert [(e["courseId"], e["source"], e["active"]) for e in entitlements] == [
            (course["id"], "free", True)
        ]
        assert learner.get(f"/api/v1/courses/{course['id']}/lessons/1")["position"] == 1
        # The chain follows the database: the worker records the claim with grantAccess.
        wait_for(
            lambda: chain.market.functions.hasAccess(course["onchainId"], learner.address).call(),
            "the worker's grantAccess for the free claim",
        )
        record = chain.market.functions.accessOf(course["onchainId"], learner.address).call()
        assert record[0] == OnchainSource.GRANT
        (entitlement,) = wait_for(
            lambda: (
                (e := learner.get("/api/v1/me/entitlements"))[0]["chainStatus"] == "recorded" and e
            ),
            "the entitlement to show its on-chain record",
        )
        assert entitlement["chainTxHash"]
    finally:
        provider.request("DELETE", path)  # the other tests expect the demo course as seeded


def test_admin_grant_and_revoke_end_on_chain(
    chain: Chain, catalog: dict[str, dict[str, Any]], admin: ApiUser, learner: ApiUser
) -> None:
    course = catalog[ESN_COURSE]
    onchain_id = course["onchainId"]
    payload = {"address": learner.address, "courseId": course["id"], "reason": "scholarship"}
    granted = admin.post("/api/v1/admin/entitlements/grant", payload)
    assert (granted["source"], granted["active"]) == ("grant", True)
    assert learner.access(course["id"])["hasAccess"] is True, "the database answers at once"
    wait_for(
        lambda: chain.market.functions.hasAccess(onchain_id, learner.address).call(),
        "the worker's grantAccess for the admin grant",
    )
    assert (
        chain.market.functions.accessOf(onchain_id, learner.address).call()[0]
        == OnchainSource.GRANT
    )

    revoked = admin.post("/api/v1/admin/entitlements/revoke", payload | {"reason": "mistake"})
    assert revoked["active"] is False
    assert learner.access(course["id"])["hasAccess"] is False
    wait_for(
        lambda: not chain.market.functions.hasAccess(onchain_id, learner.address).call(),
        "the worker's revokeAccess for the admin revoke",
    )
    (row,) = wait_for(
        lambda: (e := learner.get("/api/v1/me/entitlements"))[0]["chainStatus"] == "revoked" and e,
        "the entitlement to show its on-chain revoke",
    )
    assert row["revokeReason"] == "mistake"
    refused = learner.request("POST", "/api/v1/admin/entitlements/grant", json=payload, expect=403)
    assert refused["error"]["code"] == "not_admin"


# ------------------------------------------------------------------ refunds


@BOTH_CHAINS
def test_provider_refunds_an_eth_purchase_within_the_window(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser, provider: ApiUser
) -> None:
    course = catalog[ETH_COURSE]
    price = price_in(course, NATIVE)
    paid = buy_with_eth(chain, learner, course)
    record = chain.market.functions.accessOf(course["onchainId"], learner.address).call()
    assert record[2] > chain.latest_timestamp(), "inside the refund window"

    # The learner cannot refund; the course's provider gets the transaction to sign.
    refused = learner.request("POST", f"/api/v1/orders/{paid['id']}/refund", json={}, expect=403)
    assert refused["error"]["code"] == "not_course_provider"
    reply = provider.post(f"/api/v1/orders/{paid['id']}/refund")
    assert_no_floats(reply, "refund")
    assert (reply["rail"], reply["status"]) == ("crypto", "sign_transaction")
    fn, args = chain.market.decode_function_input(reply["transaction"]["data"])
    assert fn.fn_name == "refund"
    assert args == {
        "courseId": course["onchainId"],
        "learner": learner.address,
        "payer": learner.address,
        "token": NATIVE,
        "amount": price,
        "fee": int(paid["fee"]),
    }
    send_api_tx(chain, provider, reply["transaction"])

    wait_for(
        lambda: not learner.access(course["id"])["hasAccess"], "access to end after the refund"
    )
    refunded = wait_order(learner, paid["id"], "refunded")
    assert (refunded["amount"], refunded["fee"]) == (paid["amount"], paid["fee"])
    assert chain.market.functions.hasAccess(course["onchainId"], learner.address).call() is False
    # The whole price, fee included, is credited back to the payer to withdraw.
    assert chain.market.functions.withdrawableOf(learner.address, NATIVE).call() == price
    denied = learner.request("GET", f"/api/v1/courses/{course['id']}/lessons/1", expect=403)
    assert denied["error"]["code"] == "not_entitled"


# ------------------------------------------------------------------ card


def test_card_purchase_is_recorded_on_chain_and_its_refund_revokes_it(
    stack: E2EStack, chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser,
    provider: ApiUser,
) -> None:  # fmt: skip
    course = catalog[CARD_COURSE]
    onchain_id = course["onchainId"]
    fiat = course["fiatPrice"]
    assert fiat is not None and isinstance(fiat["amount"], str) and int(fiat["amount"]) > 0

    checkout = learner.post("/api/v1/checkout/stripe", {"courseId": course["id"]}, expect=201)
    assert checkout["url"] == f"{stack.stripe_url}/pay/{checkout['sessionId']}"
    pending = learner.get(f"/api/v1/checkout/stripe/{checkout['orderId']}")
    assert pending == {
        "orderId": checkout["orderId"],
        "status": "pending",
        "hasAccess": False,
        "courseId": course["id"],
        "courseTitle": CARD_COURSE,
        "amount": fiat["amount"],
        "currency": "usd",
    }

    # The learner pays on the Stripe stand-in's hosted page; its webhook reaches the API.
    with httpx.Client(base_url=stack.stripe_url, timeout=30) as stripe:
        page = stripe.get(f"/pay/{checkout['sessionId']}")
        assert page.status_code == 200 and course["title"] in page.text
        paid_page = stripe.post(f"/pay/{checkout['sessionId']}")
        assert paid_page.status_code == 303
        assert paid_page.headers["location"].startswith(f"{stack.api_url}/checkout/return")

    status = wait_for(
        lambda: (
            (s := learner.get(f"/api/v1/checkout/stripe/{checkout['orderId']}"))["hasAccess"] and s
        ),
        "the checkout webhook to grant access",
    )
    assert status["status"] == "paid"
    assert learner.access(course["id"])["source"] == "card"
    order = learner.order(checkout["orderId"])
    assert_no_floats(order, "card order")
    assert (order["rail"], order["amount"], order["currency"]) == ("card", fiat["amount"], "usd")
    assert order["stripeCheckoutSessionId"] == checkout["sessionId"]
    assert order["stripePaymentIntentId"], "the webhook recorded the payment"

    # The worker records the card purchase on-chain, so hasAccess answers for both rails.
    wait_for(
        lambda: chain.market.functions.hasAccess(onchain_id, learner.address).call(),
        "the worker's grantAccess for the card purchase",
    )
    record = chain.market.functions.accessOf(onchain_id, learner.address).call()
    assert record[0] == OnchainSource.CARD
    assert record[3] == bytes.fromhex(order["orderRef"][2:])[:21], "the grant names the order"

    # Refund by the provider through the API: Stripe refunds, its webhook revokes, the worker
    # revokes on-chain.
    reply = provider.post(f"/api/v1/orders/{order['id']}/refund")
    assert (reply["rail"], reply["status"]) == ("card", "refund_requested")
    assert reply["refundId"]
    refunded = wait_order(learner, order["id"], "refunded")
    assert refunded["amount"] == fiat["amount"]
    assert learner.access(course["id"])["hasAccess"] is False
    wait_for(
        lambda: not chain.market.functions.hasAccess(onchain_id, learner.address).call(),
        "the worker's revokeAccess after the card refund",
    )
    assert (
        chain.market.functions.accessOf(onchain_id, learner.address).call()[0] == OnchainSource.NONE
    )


# ------------------------------------------------------------------ certificates


def test_completing_a_course_mints_the_certificate_the_chain_verifies(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser
) -> None:
    course = catalog[GIFT_COURSE]
    onchain_id = course["onchainId"]
    total = course["lessonCount"]
    assert total >= 2, "the demo course needs lessons"
    buy_with_eth(chain, learner, course)

    before_last = complete_lessons(learner, course, range(1, total))
    assert before_last["certificate"] is None, "no certificate before the last lesson"
    done = complete_lessons(learner, course, range(total, total + 1))
    requested = done["certificate"]
    assert requested is not None and requested["mode"] == "mint"

    cert = wait_for(
        lambda: (c := certificate_of(learner, course)) and c["status"] == "minted" and c,
        "the worker to mint the certificate",
    )
    assert_no_floats(cert, "certificate")
    expected_id = token_id(onchain_id, learner.address)
    assert cert["tokenId"] == str(expected_id)
    assert cert["tokenId"] == str(
        chain.certificate.functions.tokenIdFor(learner.address, onchain_id).call()
    )
    assert cert["recordHash"] == requested["recordHash"] == record_hash(cert["record"])
    assert cert["record"]["learner"] == learner.address
    assert cert["record"]["course"]["onchainId"] == onchain_id

    # The chain agrees with the API.
    assert chain.certificate.functions.ownerOf(expected_id).call() == learner.address
    facts = dict(
        zip(CERTIFICATE_FIELDS, chain.certificate.functions.verify(expected_id).call(), strict=True)
    )
    assert (facts["holder"], facts["courseId"], facts["issuer"]) == (
        learner.address,
        onchain_id,
        course["provider"],
    )
    assert "0x" + facts["recordHash"].hex() == cert["recordHash"]
    assert facts["revoked"] is False and facts["issuedAt"] > 0
    receipt = chain.w3.eth.get_transaction_receipt(cert["txHash"])
    assert receipt["status"] == 1 and receipt["to"] == chain.address("CourseCertificate")
    progress = learner.get(f"/api/v1/courses/{course['id']}/progress")
    assert progress["completed"] == total and progress["certificate"]["status"] == "minted"


def test_voucher_certificate_is_claimed_by_the_learner_and_indexed(
    chain: Chain,
    catalog: dict[str, dict[str, Any]],
    learner: ApiUser,
    provider: ApiUser,
) -> None:
    course = catalog[FREE_COURSE]
    onchain_id = course["onchainId"]
    total = course["lessonCount"]
    # The provider chooses vouchers for this course (the demo already does: setting it again is
    # a no-op the API still answers with the course).
    updated = provider.patch(
        f"/api/v1/provider/courses/{course['id']}", {"certificateMode": "voucher"}
    )
    assert updated["certificateMode"] == "voucher"
    reply = quote(learner, course, NATIVE)
    send_api_tx(chain, learner, reply["transaction"])
    wait_access(learner, course)
    complete_lessons(learner, course, range(1, total))
    done = complete_lessons(learner, course, range(total, total + 1))
    assert done["certificate"]["mode"] == "voucher"

    cert = wait_for(
        lambda: (c := certificate_of(learner, course)) and c["status"] == "claimable" and c,
        "the worker to sign the claim voucher",
    )
    assert_no_floats(cert, "voucher certificate")
    assert cert["txHash"] is None, "nothing was sent by the platform"
    assert isinstance(cert["voucherDeadline"], str)
    deadline = int(cert["voucherDeadline"])
    assert deadline > chain.latest_timestamp()
    expected_id = token_id(onchain_id, learner.address)
    assert cert["tokenId"] == str(expected_id)
    assert chain.certificate.functions.balanceOf(learner.address).call() == 0

    # The learner claims with their own wallet and pays the gas.
    claim = chain.certificate.functions.claim(
        onchain_id,
        bytes.fromhex(cert["recordHash"][2:]),
        deadline,
        bytes.fromhex(cert["voucherSignature"][2:]),
    )
    receipt = chain.call(learner.account, claim)
    # The receipt also holds Transfer and Locked: not CertificateMinted, so skip them quietly.
    minted = chain.certificate.events.CertificateMinted().process_receipt(receipt, errors=DISCARD)
    assert len(minted) == 1
    operator = Account.from_key(DEMO_KEYS["operator"]).address
    assert minted[0]["args"]["signer"] == operator, "the voucher was signed by the issuer key"

    # Only the indexer can have moved it to minted with the claim's transaction hash.
    claimed = wait_for(
        lambda: (c := certificate_of(learner, course)) and c["status"] == "minted" and c,
        "the indexer to observe CertificateMinted from the claim",
    )
    assert claimed["txHash"] == receipt["transactionHash"].to_0x_hex()
    assert claimed["tokenId"] == str(expected_id)
    assert claimed["recordHash"] == cert["recordHash"] == record_hash(claimed["record"])
    assert chain.certificate.functions.ownerOf(expected_id).call() == learner.address
    verified = dict(
        zip(CERTIFICATE_FIELDS, chain.certificate.functions.verify(expected_id).call(), strict=True)
    )
    assert verified["holder"] == learner.address
    assert Web3.to_hex(verified["recordHash"]) == cert["recordHash"]


def _minted_certificate(learner: ApiUser, course: dict[str, Any]) -> dict[str, Any]:
    """Complete every lesson and wait for the worker's mint."""
    complete_lessons(learner, course, range(1, course["lessonCount"] + 1))
    return wait_for(
        lambda: (c := certificate_of(learner, course)) and c["status"] == "minted" and c,
        "the worker to mint the certificate",
    )


def _wait_revoked(chain: Chain, learner: ApiUser, course: dict[str, Any]) -> dict[str, Any]:
    """Wait until the chain and the API both say the certificate is revoked; returns the API's."""
    tid = token_id(course["onchainId"], learner.address)
    wait_for(
        lambda: chain.certificate.functions.verify(tid).call()[CERTIFICATE_FIELDS.index("revoked")],
        "the worker's revoke of the certificate",
    )
    return wait_for(
        lambda: (c := certificate_of(learner, course)) and c["status"] == "revoked" and c,
        "the indexer to mark the certificate revoked",
    )


def test_refunded_crypto_purchase_revokes_the_certificate_as_refunded(
    chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser, provider: ApiUser
) -> None:
    course = catalog[ETH_COURSE]
    paid = buy_with_eth(chain, learner, course)
    _minted_certificate(learner, course)
    reply = provider.post(f"/api/v1/orders/{paid['id']}/refund")
    send_api_tx(chain, provider, reply["transaction"])
    cert = _wait_revoked(chain, learner, course)
    assert cert["revokeReasonCode"] == 5
    tid = token_id(course["onchainId"], learner.address)
    facts = dict(
        zip(CERTIFICATE_FIELDS, chain.certificate.functions.verify(tid).call(), strict=True)
    )
    assert (facts["holder"], facts["revoked"], facts["revokeReason"]) == (
        learner.address,
        True,
        5,
    ), "kept, but revoked"


def test_refunded_card_purchase_revokes_the_certificate_as_refunded(
    stack: E2EStack, chain: Chain, catalog: dict[str, dict[str, Any]], learner: ApiUser,
    provider: ApiUser,
) -> None:  # fmt: skip
    course = catalog[CARD_COURSE]
    checkout = learner.post("/api/v1/checkout/stripe", {"courseId": course["id"]}, expect=201)
    with httpx.Client(base_url=stack.stripe_url, timeout=30) as stripe:
        assert stripe.post(f"/pay/{checkout['sessionId']}").status_code == 303
    wait_order(learner, checkout["orderId"], "paid")
    # The certificate needs the card access on-chain first: the mint waits for the grant.
    _minted_certificate(learner, course)
    provider.post(f"/api/v1/orders/{checkout['orderId']}/refund")
    wait_order(learner, checkout["orderId"], "refunded")
    cert = _wait_revoked(chain, learner, course)
    assert cert["revokeReasonCode"] == 5
