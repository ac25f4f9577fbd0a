"""Browser: buying a course with ETH, with an ERC-20 through an EIP-2612 permit, and by card."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from conftest import App, Stack
from support.web import fresh_key

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.slow]


def rpc(stack: Stack, method: str, params: list | None = None):
    reply = httpx.post(
        stack.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    ).json()
    assert "error" not in reply, reply
    return reply["result"]


@contextmanager
def manual_mining(stack: Stack) -> Iterator[None]:
    """Hold transactions in the mempool so the page's pending state can be seen."""
    rpc(stack, "evm_setAutomine", [False])
    try:
        yield
    finally:
        rpc(stack, "evm_setAutomine", [True])
        rpc(stack, "evm_mine")


def open_course(app: App, stack: Stack, title: str) -> dict:
    course = stack.course_by_title(title)
    app.goto(f"/courses/{course['id']}")
    app.page.get_by_role("heading", level=1, name=title).wait_for()
    return course


def test_buy_with_eth(open_app, stack: Stack) -> None:
    app: App = open_app("anvil7")
    page = app.page
    course = open_course(app, stack, "Solidity from Zero")
    app.screenshot("course")
    app.sign_in()
    app.choose_price("ETH")
    status = page.get_by_test_id("tx-status")
    with manual_mining(stack):
        page.get_by_test_id("buy-crypto").click()
        page.locator('[data-testid="tx-status"][data-phase="pending"]').wait_for()
        assert "Pending" in status.inner_text()
        tx_hash = status.locator("code").get_attribute("data-hash")
        assert tx_hash and re.fullmatch(r"0x[0-9a-f]{64}", tx_hash)
        app.screenshot("checkout-pending", full_page=False)
    # Confirmed on-chain, then access appears once the indexer has it (no reload).
    page.get_by_test_id("owned").wait_for(timeout=60_000)
    assert "Confirmed" in page.get_by_test_id("tx-status").inner_text()
    app.screenshot("checkout-confirmed", full_page=False)
    receipt = rpc(stack, "eth_getTransactionReceipt", [tx_hash])
    assert receipt["status"] == "0x1"
    assert receipt["to"].lower() == stack.contract("CourseMarket").lower()
    # The API agrees.
    with stack.api() as client:
        access = client.get(
            f"/api/v1/courses/{course['id']}/access", params={"address": app.wallet.address}
        ).json()
    assert access["hasAccess"] is True
    # Only eth_sendTransaction for the purchase: no approval, no typed data.
    assert "eth_signTypedData_v4" not in app.wallet.methods_called()


@pytest.mark.parametrize("symbol", ["ESN"])
def test_buy_with_erc20_permit(open_app, stack: Stack, symbol: str) -> None:
    app: App = open_app("learner2")
    page = app.page
    course = open_course(app, stack, "Designing Token Economies")
    app.sign_in()
    app.choose_price(symbol)
    page.get_by_test_id("buy-crypto").click()
    page.get_by_test_id("owned").wait_for(timeout=60_000)
    calls = app.wallet.methods_called()
    # EIP-2612: one signature, then a single purchaseWithPermit transaction (no approve).
    assert calls.count("eth_signTypedData_v4") == 1
    assert calls.count("eth_sendTransaction") == 1
    typed = next(p for m, p in app.wallet.calls if m == "eth_signTypedData_v4")[1]
    assert '"primaryType":"Permit"' in typed.replace(" ", "")
    tx = next(p for m, p in app.wallet.calls if m == "eth_sendTransaction")[0]
    assert tx["to"].lower() == stack.contract("CourseMarket").lower()
    # purchaseWithPermit(uint256,address,uint256,address,bytes32,uint32,
    #                    uint256,uint8,bytes32,bytes32)
    assert tx["data"].startswith("0x")
    price = next(p for p in course["prices"] if p["token"]["symbol"] == symbol)
    allowance = rpc(
        stack,
        "eth_call",
        [
            {
                "to": stack.contract(symbol),
                "data": "0xdd62ed3e"
                + app.wallet.address[2:].lower().rjust(64, "0")
                + stack.contract("CourseMarket")[2:].lower().rjust(64, "0"),
            },
            "latest",
        ],
    )
    assert int(allowance, 16) == 0, "the permit was for the exact price and fully used"
    assert int(price["price"]) > 0


def test_buy_by_card(open_app, stack: Stack) -> None:
    app: App = open_app("anvil8")
    page = app.page
    course = open_course(app, stack, "Zero-Knowledge Proofs in Practice")
    if not course.get("fiatPrice"):
        pytest.fail("the demo catalog should have a card price for this course")
    app.sign_in()
    page.get_by_test_id("buy-card").click()
    # The Stripe fake's hosted pay page.
    page.wait_for_url(re.compile(re.escape(stack.stripe_url) + r"/pay/"))
    page.get_by_role("button", name=re.compile("^Pay")).click()
    # Back on Tuition: the return page waits for the webhook to grant access.
    page.wait_for_url(re.compile(r"/checkout/return\?session_id="))
    page.locator('[data-testid="checkout-return"][data-status="paid"]').wait_for(timeout=60_000)
    page.get_by_role("heading", name="Payment received").wait_for()
    app.screenshot("checkout-card-return", full_page=False)
    page.get_by_role("link", name="Start learning").click()
    page.get_by_test_id("lesson").wait_for()
    # Payment history shows the card order.
    page.get_by_role("link", name="My account").click()
    row = page.locator('tr[data-rail="card"]')
    row.wait_for()
    assert "paid" in row.inner_text()


def test_card_return_page_finds_the_order_in_another_browser(open_app, stack: Stack) -> None:
    """Back from Stripe on another device: nothing but the session id Stripe put in the URL."""
    key = fresh_key(stack.rpc_url)
    app: App = open_app(key)
    page = app.page
    course = open_course(app, stack, "Solidity from Zero")
    assert course["fiatPrice"], "the demo catalog should have a card price for this course"
    app.sign_in()
    page.get_by_test_id("buy-card").click()
    page.wait_for_url(re.compile(re.escape(stack.stripe_url) + r"/pay/"))
    page.get_by_role("button", name=re.compile("^Pay")).click()
    page.wait_for_url(re.compile(r"/checkout/return\?"))
    back = httpx.URL(page.url)
    assert back.params["session_id"].startswith("cs_"), "Stripe fills in {CHECKOUT_SESSION_ID}"
    assert page.evaluate("() => sessionStorage.getItem('tuition.cardCheckout')") is not None

    # Another browser: no cookies, empty sessionStorage; the learner signs in with the same wallet.
    other: App = open_app(key, path=back.raw_path.decode())
    assert other.page.evaluate("() => sessionStorage.length") == 0
    other.page.get_by_text("sign in to see this payment").wait_for()  # only the buyer may
    other.sign_in()
    other.page.locator('[data-testid="checkout-return"][data-status="paid"]').wait_for(
        timeout=60_000
    )
    other.page.get_by_role("heading", name="Payment received").wait_for()
    text = other.page.get_by_test_id("checkout-return").inner_text()
    assert "“Solidity from Zero” is yours." in text
    assert "Paid $49.00 by card." in text
    other.page.get_by_role("link", name="Start learning").click()
    other.page.get_by_test_id("lesson").wait_for()
    assert other.page.url.endswith(f"/courses/{course['id']}/lessons/1")


DOMAIN_SEPARATOR = "0x3644e515"  # DOMAIN_SEPARATOR() selector
APPROVE = "0x095ea7b3"  # approve(address,uint256)


def test_buy_with_erc20_without_permit_approves_the_exact_price(open_app, stack: Stack) -> None:
    """A token without EIP-2612 (its DOMAIN_SEPARATOR() call fails, as on a plain ERC-20):
    approve exactly the price, then purchase; never an unlimited allowance."""
    app: App = open_app("learner2")
    page = app.page

    def no_permit(route) -> None:
        request = route.request
        body = request.post_data_json if request.method == "POST" else None
        calls = body if isinstance(body, list) else [body] if body else []
        if any(
            c.get("method") == "eth_call"
            and str(c["params"][0].get("data", c["params"][0].get("input", ""))).startswith(
                DOMAIN_SEPARATOR
            )
            for c in calls
        ):
            error = {"code": 3, "message": "execution reverted", "data": "0x"}
            reply = [{"jsonrpc": "2.0", "id": c["id"], "error": error} for c in calls]
            route.fulfill(
                status=200,
                headers={"Access-Control-Allow-Origin": "*", "Content-Type": "application/json"},
                body=json.dumps(reply if isinstance(body, list) else reply[0]),
            )
            return
        route.continue_()

    # The page reads the chain straight from the RPC endpoint: intercept there.
    page.route(stack.rpc_url + "/**", no_permit)
    page.route(stack.rpc_url, no_permit)
    course = open_course(app, stack, "Solidity from Zero")
    app.sign_in()
    app.choose_price("USDC")
    page.get_by_test_id("buy-crypto").click()
    page.get_by_test_id("owned").wait_for(timeout=60_000)

    calls = app.wallet.methods_called()
    assert "eth_signTypedData_v4" not in calls
    sent = [p[0] for m, p in app.wallet.calls if m == "eth_sendTransaction"]
    assert len(sent) == 2
    approve, purchase = sent
    assert approve["to"].lower() == stack.contract("USDC").lower()
    assert approve["data"].startswith(APPROVE)
    price = next(int(p["price"]) for p in course["prices"] if p["token"]["symbol"] == "USDC")
    assert int(approve["data"][-64:], 16) == price, "approve exactly the price"
    assert purchase["to"].lower() == stack.contract("CourseMarket").lower()
    # The approval was used up by the purchase.
    allowance = rpc(
        stack,
        "eth_call",
        [
            {
                "to": stack.contract("USDC"),
                "data": "0xdd62ed3e"
                + app.wallet.address[2:].lower().rjust(64, "0")
                + stack.contract("CourseMarket")[2:].lower().rjust(64, "0"),
            },
            "latest",
        ],
    )
    assert int(allowance, 16) == 0
