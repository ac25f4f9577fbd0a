"""Browser: a provider creates a course, registers it on-chain, prices it on both rails,
publishes it, sees the sale and withdraws."""

from __future__ import annotations

import re

import pytest
from conftest import App, Stack
from websupport import wait_mining

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.slow]

TITLE = "Gas Optimisation Clinic"


def test_provider_creates_prices_and_sells_a_course(open_app, stack: Stack) -> None:
    app: App = open_app("provider", path="/provider")
    page = app.page
    app.sign_in()
    page.get_by_role("heading", name="Create a course").wait_for()

    page.get_by_label("Title", exact=True).fill(TITLE)
    page.get_by_label("Description").fill("Measure, then cut gas: storage, calldata, loops.")
    page.get_by_label("Refund window (days)").fill("0")
    page.get_by_label("Lesson 1 title").fill("Measuring gas")
    page.get_by_label("Lesson 1 content").fill("Use a gas report before changing anything.")
    page.get_by_role("button", name="Add a lesson").click()
    page.get_by_label("Lesson 2 title").fill("Storage packing")
    page.get_by_role("button", name="Create draft").click()
    page.get_by_text("was created as a draft").wait_for()

    card = page.locator("article.manage-course").filter(has_text=TITLE)
    card.wait_for()
    assert "not on-chain yet" in card.inner_text()
    card.get_by_test_id("register-onchain").click()
    wait_mining(
        stack.rpc_url,
        lambda: "on-chain #" in card.inner_text(),
        timeout=60,
        what="the on-chain registration",
    )

    # Token prices, signed by the provider's wallet.
    card.get_by_label("Token", exact=True).select_option(label="ETH")
    card.get_by_label(re.compile(r"^Price")).fill("0.015")
    card.get_by_role("button", name="Set price").click()
    card.locator('[data-phase="confirmed"]').filter(has_text="0.015 ETH").wait_for()
    card.get_by_label("Token", exact=True).select_option(label="USDC")
    card.get_by_label(re.compile(r"^Price")).fill("12.5")
    card.get_by_role("button", name="Set price").click()
    card.locator('[data-phase="confirmed"]').filter(has_text="12.5 USDC").wait_for()

    # Card price through the API.
    card.get_by_label("Card price", exact=True).fill("19.99")
    card.get_by_role("button", name="Set card price").click()
    card.get_by_text("Card price set to $19.99").wait_for()
    card.get_by_role("button", name="Publish").click()
    card.locator(".badge-published").wait_for()

    # The indexer mirrors the on-chain prices into the catalog.
    wait_mining(
        stack.rpc_url,
        lambda: len(stack.course_by_title(TITLE)["prices"]) == 2,
        what="the indexed prices",
    )
    page.reload()
    card.locator(".price-list").filter(has_text="0.015 ETH").wait_for()
    assert "12.5 USDC" in card.inner_text() and "$19.99" in card.inner_text()
    app.screenshot("provider-dashboard")

    # A learner buys it in another browser.
    learner: App = open_app("learner")
    course = stack.course_by_title(TITLE)
    learner.goto(f"/courses/{course['id']}")
    learner.page.get_by_text("0.015 ETH").first.wait_for()
    learner.sign_in()
    learner.page.get_by_role("radio", name=re.compile("ETH")).check()
    learner.page.get_by_test_id("buy-crypto").click()
    learner.page.get_by_test_id("owned").wait_for(timeout=60_000)

    # The provider sees the sale and, with a refund window of 0, can withdraw at once.
    page.reload()
    sales = page.get_by_role("region", name="Payments")
    sales.locator('tr[data-rail="crypto"]').filter(has_text=TITLE).wait_for()
    eth_row = page.locator('.balances tr[data-token="ETH"]')
    withdraw = eth_row.get_by_role("button", name="Withdraw")
    wait_mining(stack.rpc_url, withdraw.is_enabled, timeout=30, what="a withdrawable balance")
    app.screenshot("provider-sales")
    withdraw.click()
    page.locator('[data-testid="withdraw-status"][data-phase="confirmed"]').wait_for()
    assert "Withdraw ETH" in page.get_by_test_id("withdraw-status").inner_text()
