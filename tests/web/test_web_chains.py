"""Browser: one app, two chains. The course page lists prices per chain, buying on one asks the
wallet to switch (or to add the chain first), a wallet on a chain Tuition does not run on is told
so and offered the switch, and the account shows each order's chain with its explorer link."""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import EXPLORERS, FIRST_CHAIN, SECOND_CHAIN, App, Stack
from eth_account import Account
from support.web import NATIVE, Market, Operator, fresh_key, rpc, wait_mining

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.slow]

COURSE = "Solidity from Zero"


def funded_on_both(stack: Stack) -> str:
    """A new key with ether on both chains (no other test has used it)."""
    key = fresh_key(stack.rpc_url)
    address = Account.from_key(key).address
    rpc(stack.rpc_on(SECOND_CHAIN), "anvil_setBalance", [address, hex(10 * 10**18)])
    return key


def open_course(app: App, stack: Stack, title: str = COURSE) -> dict:
    course = stack.course_by_title(title)
    app.goto(f"/courses/{course['id']}")
    app.page.get_by_role("heading", level=1, name=title).wait_for()
    return course


def has_access(stack: Stack, course_id: int, address: str) -> bool:
    with stack.api() as client:
        reply = client.get(f"/api/v1/courses/{course_id}/access", params={"address": address})
    return bool(reply.json()["hasAccess"])


def purchase_tx(app: App) -> dict:
    (tx,) = [params[0] for method, params in app.wallet.calls if method == "eth_sendTransaction"]
    return dict(tx)


def test_course_page_lists_prices_grouped_by_chain(open_app, stack: Stack) -> None:
    app: App = open_app(funded_on_both(stack))
    course = open_course(app, stack)
    prices = app.page.get_by_role("region", name="Prices on Anvil 31338")
    prices.get_by_text("ESN").first.wait_for()
    with httpx.Client(base_url=stack.api_url) as client:
        for chain_id in (FIRST_CHAIN, SECOND_CHAIN):
            listed = client.get(
                f"/api/v1/courses/{course['id']}", params={"chainId": chain_id}
            ).json()
            section = app.page.get_by_role("region", name=f"Prices on Anvil {chain_id}")
            shown = {li.get_attribute("data-token") for li in section.locator("li").all()}
            assert shown == {p["token"]["symbol"] for p in listed["prices"]}, chain_id


def test_buying_on_the_second_chain_switches_the_wallet_there(open_app, stack: Stack) -> None:
    app: App = open_app(funded_on_both(stack))
    page = app.page
    course = open_course(app, stack)
    app.sign_in()
    assert app.wallet.chain_id == FIRST_CHAIN
    app.choose_price("ETH", SECOND_CHAIN)
    buy = page.get_by_test_id("buy-crypto")
    assert buy.inner_text() == "Switch to Anvil 31338 and buy with ETH"
    page.get_by_test_id("switch-hint").wait_for()
    app.screenshot("course-chains")
    buy.click()
    page.get_by_test_id("owned").wait_for(timeout=60_000)

    calls = app.wallet.methods_called()
    assert calls.index("wallet_switchEthereumChain") < calls.index("eth_sendTransaction")
    assert "wallet_addEthereumChain" not in calls
    assert app.wallet.chain_id == SECOND_CHAIN
    # The purchase went to chain B's market, and was mined there.
    tx = purchase_tx(app)
    assert tx["to"].lower() == stack.contract_on(SECOND_CHAIN, "CourseMarket").lower()
    assert int(tx["chainId"], 16) == SECOND_CHAIN
    status = page.get_by_test_id("tx-status")
    assert "Anvil 31338" in status.inner_text()
    tx_hash = status.locator("code").get_attribute("data-hash")
    receipt = rpc(stack.rpc_on(SECOND_CHAIN), "eth_getTransactionReceipt", [tx_hash])
    assert receipt["status"] == "0x1"
    assert rpc(stack.rpc_url, "eth_getTransactionReceipt", [tx_hash]) is None
    link = status.get_by_role("link")
    assert link.get_attribute("href") == f"{EXPLORERS[SECOND_CHAIN]}/tx/{tx_hash}"
    assert has_access(stack, course["id"], app.wallet.address)

    # The account's history names the chain and links to that chain's explorer.
    app.goto("/account")
    row = page.locator("tr[data-rail=crypto]").first
    row.wait_for()
    assert "Anvil 31338" in row.inner_text()
    assert row.locator(f"td[data-chain-id='{SECOND_CHAIN}']").count() == 1
    href = row.get_by_role("link").get_attribute("href")
    assert href == f"{EXPLORERS[SECOND_CHAIN]}/tx/{tx_hash}"


def test_a_wallet_that_does_not_know_the_chain_is_asked_to_add_it(open_app, stack: Stack) -> None:
    app: App = open_app(funded_on_both(stack), known_chains={FIRST_CHAIN})
    page = app.page
    course = open_course(app, stack)
    app.sign_in()
    app.choose_price("ETH", SECOND_CHAIN)
    page.get_by_test_id("buy-crypto").click()
    page.get_by_test_id("owned").wait_for(timeout=60_000)

    calls = app.wallet.methods_called()
    # switch → 4902 (unknown) → add → switch, all before the purchase.
    assert calls.index("wallet_switchEthereumChain") < calls.index("wallet_addEthereumChain")
    assert calls.index("wallet_addEthereumChain") < calls.index("eth_sendTransaction")
    (added,) = app.wallet.added_chains
    assert added["chainId"] == hex(SECOND_CHAIN)
    assert added["chainName"] == "Anvil 31338"
    assert added["rpcUrls"] == [stack.rpc_on(SECOND_CHAIN)]
    assert added["nativeCurrency"] == {"name": "Ether", "symbol": "ETH", "decimals": 18}
    assert added["blockExplorerUrls"] == [EXPLORERS[SECOND_CHAIN]]
    assert app.wallet.chain_id == SECOND_CHAIN
    assert purchase_tx(app)["to"].lower() == (
        stack.contract_on(SECOND_CHAIN, "CourseMarket").lower()
    )
    assert has_access(stack, course["id"], app.wallet.address)


def test_a_refused_switch_sends_nothing_and_leaves_no_order(open_app, stack: Stack) -> None:
    app: App = open_app(funded_on_both(stack))
    page = app.page
    open_course(app, stack)
    app.sign_in()
    app.choose_price("ETH", SECOND_CHAIN)
    app.wallet.reject_next("wallet_switchEthereumChain")
    page.get_by_test_id("buy-crypto").click()
    page.locator('[data-testid="tx-status"][data-phase="failed"]').wait_for()
    assert "eth_sendTransaction" not in app.wallet.methods_called()
    assert app.wallet.chain_id == FIRST_CHAIN
    # The page's own session (its cookies) asks for the learner's orders.
    orders = page.request.get(f"{stack.api_url}/api/v1/me/orders").json()
    assert orders == [], "the quote is asked for only once the wallet is there"


def test_a_wallet_on_an_unsupported_chain_is_told_and_offered_the_switch(
    open_app, stack: Stack
) -> None:
    app: App = open_app(funded_on_both(stack))
    page = app.page
    course = open_course(app, stack)
    app.sign_in()
    app.choose_price("ETH", SECOND_CHAIN)
    # The user moves the wallet to Ethereum mainnet, where Tuition does not run.
    app.wallet.chain_id = 1
    page.evaluate("window.__tuitionWalletEmit('chainChanged', '0x1')")
    notice = page.get_by_test_id("unsupported-chain")
    notice.wait_for()
    assert "chain 1" in notice.inner_text()
    assert "Anvil 31337 and Anvil 31338" in notice.inner_text()
    page.get_by_test_id("wrong-network").wait_for()
    app.screenshot("unsupported-chain", full_page=False)
    notice.get_by_role("button", name="Switch to Anvil 31338").click()
    notice.wait_for(state="detached")
    assert app.wallet.chain_id == SECOND_CHAIN
    assert "eth_sendTransaction" not in app.wallet.methods_called()
    page.get_by_test_id("buy-crypto").click()
    page.get_by_test_id("owned").wait_for(timeout=60_000)
    assert has_access(stack, course["id"], app.wallet.address)


def test_provider_registers_prices_and_withdraws_on_both_chains(open_app, stack: Stack) -> None:
    title = "Cross-Chain Auditing"
    app: App = open_app(funded_on_both(stack), path="/provider")
    page = app.page
    app.sign_in()
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Refund window (days)").fill("0")
    page.get_by_label("Lesson 1 title").fill("Two chains, one course")
    page.get_by_role("button", name="Create draft").click()
    card = page.locator("article.manage-course").filter(has_text=title)
    card.wait_for()
    on = {
        chain_id: card.get_by_role("region", name=f"On Anvil {chain_id}")
        for chain_id in (FIRST_CHAIN, SECOND_CHAIN)
    }

    # Registered on each chain: the wallet is switched to the chain it registers on.
    for chain_id in (FIRST_CHAIN, SECOND_CHAIN):
        on[chain_id].get_by_role("button", name=f"Register on Anvil {chain_id}").click()
        on[chain_id].get_by_text("on-chain #").wait_for(timeout=60_000)
        assert app.wallet.chain_id == chain_id
    # A price per chain, each set on its own chain's market (B first: the wallet switches back).
    for chain_id, amount in ((SECOND_CHAIN, "0.02"), (FIRST_CHAIN, "0.01")):
        part = on[chain_id]
        part.get_by_label("Token", exact=True).select_option(label="ETH")
        part.get_by_label(re.compile(r"^Price")).fill(amount)
        part.get_by_role("button", name="Set price").click()
        part.locator('[data-phase="confirmed"]').filter(has_text=f"{amount} ETH").wait_for()
        assert app.wallet.chain_id == chain_id
    card.get_by_role("button", name="Publish").click()
    card.locator(".badge-published").wait_for()

    course_id = int(card.get_attribute("data-course-id") or 0)
    for chain_id, wei in ((FIRST_CHAIN, 10**16), (SECOND_CHAIN, 2 * 10**16)):
        wait_mining(
            stack.rpc_on(chain_id),
            lambda chain_id=chain_id, wei=wei: (
                [int(p["price"]) for p in course_on(stack, course_id, chain_id)["prices"]] == [wei]
            ),
            what=f"the price indexed on {chain_id}",
        )
    page.reload()
    on[SECOND_CHAIN].locator(".price-list").filter(has_text="0.02 ETH").wait_for()
    on[FIRST_CHAIN].locator(".price-list").filter(has_text="0.01 ETH").wait_for()

    # A learner buys on chain B.
    learner: App = open_app(funded_on_both(stack))
    learner.goto(f"/courses/{course_id}")
    learner.page.get_by_role("heading", level=1, name=title).wait_for()
    learner.sign_in()
    learner.choose_price("ETH", SECOND_CHAIN)
    learner.page.get_by_test_id("buy-crypto").click()
    learner.page.get_by_test_id("owned").wait_for(timeout=60_000)

    # The provider sees the sale on chain B, B's balance, and withdraws it on B.
    page.reload()
    sale = page.get_by_role("region", name="Payments").locator('tr[data-rail="crypto"]')
    sale.filter(has_text=title).wait_for()
    assert "Anvil 31338" in sale.filter(has_text=title).inner_text()
    b_eth = page.locator(f'.balances [data-chain-id="{SECOND_CHAIN}"] tr[data-token="ETH"]')
    a_eth = page.locator(f'.balances [data-chain-id="{FIRST_CHAIN}"] tr[data-token="ETH"]')
    withdraw = b_eth.get_by_role("button", name="Withdraw")
    wait_mining(
        stack.rpc_on(SECOND_CHAIN), withdraw.is_enabled, timeout=30, what="B's withdrawable"
    )
    assert a_eth.get_by_role("button", name="Withdraw").is_disabled()
    assert page.locator(".totals li").filter(has_text="ETH on Anvil 31338").count() == 1
    app.screenshot("provider-chain-balances")
    assert app.wallet.chain_id == FIRST_CHAIN
    withdraw.click()
    page.locator('[data-testid="withdraw-status"][data-phase="confirmed"]').wait_for()
    assert app.wallet.chain_id == SECOND_CHAIN
    market_b = Market(stack.rpc_on(SECOND_CHAIN), stack.contract_on(SECOND_CHAIN, "CourseMarket"))
    assert market_b.withdrawable_of(app.wallet.address, NATIVE) == 0
    (withdraw_tx,) = [
        params[0]
        for method, params in app.wallet.calls
        if method == "eth_sendTransaction"
        and params[0]["to"].lower() == market_b.market.address.lower()
        and params[0]["data"].startswith("0x51cff8d9")  # withdraw(address)
    ]
    assert int(withdraw_tx["chainId"], 16) == SECOND_CHAIN


def course_on(stack: Stack, course_id: int, chain_id: int) -> dict:
    with stack.api() as client:
        reply = client.get(f"/api/v1/courses/{course_id}", params={"chainId": chain_id})
    reply.raise_for_status()
    return dict(reply.json())


def mint_on(stack: Stack, chain_id: int, title: str) -> tuple[int, str]:
    """A certificate issued on chain `chain_id` only: (token id, holder)."""
    provider_key = funded_on_both(stack)
    holder = Account.create().address
    rpc_url = stack.rpc_on(chain_id)
    market = Market(rpc_url, stack.contract_on(chain_id, "CourseMarket"))
    onchain_id = market.create_course(provider_key, title, 0)
    issuer = stack.keys["issuer" if chain_id == FIRST_CHAIN else "issuer_b"]
    operator = Operator(
        rpc_url,
        issuer,
        stack.contract_on(chain_id, "CourseCertificate"),
        stack.contract_on(chain_id, "CourseMarket"),
    )
    return operator.mint(holder, onchain_id, b"\x27" * 28), holder


def test_a_certificate_is_found_on_whichever_chain_holds_it(open_app, stack: Stack) -> None:
    on_a, holder_a = mint_on(stack, FIRST_CHAIN, "Verified on A")
    on_b, holder_b = mint_on(stack, SECOND_CHAIN, "Verified on B")
    app: App = open_app(funded_on_both(stack), path="/verify")
    page = app.page
    searched = page.get_by_test_id("searched-chains")

    # No chain given: every chain is searched until one has it, and the page says which.
    for token_id, holder, chain_id in (
        (on_a, holder_a, FIRST_CHAIN),
        (on_b, holder_b, SECOND_CHAIN),
    ):
        app.goto(f"/verify/{token_id}")
        page.get_by_test_id("certificate-view").wait_for()
        assert searched.get_attribute("data-chain-id") == str(chain_id)
        assert f"Found on Anvil {chain_id}" in searched.inner_text()
        assert holder in page.get_by_test_id("step-holder").inner_text()
        assert (
            f"on Anvil {chain_id} (chain {chain_id})"
            in page.get_by_test_id("certificate-view").inner_text()
        )
    assert "searched Anvil 31337, Anvil 31338" in searched.inner_text()
    app.screenshot("verify-chain-b", full_page=False)

    # A chain given (by id or by network name): only that chain is asked.
    app.goto(f"/verify/{on_b}?chain={FIRST_CHAIN}")
    page.get_by_test_id("verdict-code").wait_for()
    assert page.get_by_test_id("verdict-code").get_attribute("data-verdict") == "not_found"
    assert searched.inner_text() == "Not found; searched Anvil 31337."
    app.goto(f"/verify/{on_b}?chain=webtest-b")
    page.get_by_test_id("certificate-view").wait_for()
    assert searched.get_attribute("data-chain-id") == str(SECOND_CHAIN)
    app.goto(f"/verify/{on_b}?chain=5")
    page.get_by_text("Unknown chain “5”").wait_for()

    # Nowhere: the report names every chain it searched.
    app.goto(f"/verify/{on_b + 1}")
    page.get_by_test_id("verdict-code").wait_for()
    assert "no certificate" in page.get_by_test_id("step-exists").inner_text()
    assert "webtest (31337), webtest-b (31338)" in page.get_by_test_id("step-exists").inner_text()

    # The form: a chain picked there ends up in the link.
    app.goto("/verify")
    page.get_by_label("Certificate number or link").fill(str(on_b))
    page.get_by_label("Chain").select_option(str(SECOND_CHAIN))
    page.get_by_role("button", name="Verify").click()
    page.get_by_test_id("certificate-view").wait_for()
    assert page.url.endswith(f"/verify/{on_b}?chain={SECOND_CHAIN}")
    # Its share link names the chain too (the same token id may exist on the other one).
    assert f"chain={SECOND_CHAIN}" in page.get_by_test_id("certificate-view").inner_html()
