"""Browser: a provider creates a course, registers it on-chain, prices it on both rails,
publishes it, sees the sale and withdraws; the payout ledger after a release and a withdrawal;
the certificate mode of a course."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from conftest import FIRST_CHAIN, SECOND_CHAIN, App, Stack
from eth_account import Account
from support.web import (
    NATIVE,
    Market,
    Operator,
    contract,
    fresh_key,
    increase_time,
    rpc,
    send,
    wait_mining,
)
from web3 import Web3

from backend.provider.profiles import profile_hash

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
    # Registered on the API's own chain only (the two-chain case is in test_web_chains.py).
    on_a = card.get_by_role("region", name="On Anvil 31337")
    on_a.get_by_test_id("register-onchain").click()
    wait_mining(
        stack.rpc_url,
        lambda: "on-chain #" in on_a.inner_text(),
        timeout=60,
        what="the on-chain registration",
    )

    # Token prices, signed by the provider's wallet.
    on_a.get_by_label("Token", exact=True).select_option(label="ETH")
    on_a.get_by_label(re.compile(r"^Price")).fill("0.015")
    on_a.get_by_role("button", name="Set price").click()
    on_a.locator('[data-phase="confirmed"]').filter(has_text="0.015 ETH").wait_for()
    on_a.get_by_label("Token", exact=True).select_option(label="USDC")
    on_a.get_by_label(re.compile(r"^Price")).fill("12.5")
    on_a.get_by_role("button", name="Set price").click()
    on_a.locator('[data-phase="confirmed"]').filter(has_text="12.5 USDC").wait_for()

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
    learner.choose_price("ETH")
    learner.page.get_by_test_id("buy-crypto").click()
    learner.page.get_by_test_id("owned").wait_for(timeout=60_000)

    # The provider sees the sale and, with a refund window of 0, can withdraw at once.
    page.reload()
    sales = page.get_by_role("region", name="Payments")
    sales.locator('tr[data-rail="crypto"]').filter(has_text=TITLE).wait_for()
    eth_row = page.locator(f'.balances [data-chain-id="{FIRST_CHAIN}"] tr[data-token="ETH"]')
    withdraw = eth_row.get_by_role("button", name="Withdraw")
    wait_mining(stack.rpc_url, withdraw.is_enabled, timeout=30, what="a withdrawable balance")
    app.screenshot("provider-sales")
    withdraw.click()
    page.locator('[data-testid="withdraw-status"][data-phase="confirmed"]').wait_for()
    assert "Withdraw ETH" in page.get_by_test_id("withdraw-status").inner_text()


def token_text(amount: int, decimals: int, symbol: str) -> str:
    """How the app's formatToken shows an amount with at most 6 decimals."""
    whole, fraction = divmod(amount, 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0")
    assert len(digits) <= 6, "the app would round this amount"
    return f"{whole:,}" + (f".{digits}" if digits else "") + f" {symbol}"


def api_json(app: App, path: str, method: str = "GET", body: Any = None) -> Any:
    """Call the API from the page, with its session cookie (and its Origin on writes)."""
    script = """async ([path, method, body]) => {
        const init = { method, headers: { Accept: "application/json" } };
        if (body !== null) {
            init.body = JSON.stringify(body);
            init.headers["Content-Type"] = "application/json";
        }
        const reply = await fetch(path, init);
        return { status: reply.status, text: await reply.text() };
    }"""
    reply = app.page.evaluate(script, [path, method, body])
    assert 200 <= reply["status"] < 300, f"{method} {path}: {reply['status']} {reply['text']}"
    return json.loads(reply["text"])


def test_payout_ledger_shows_a_release_and_the_withdrawal(open_app, stack: Stack) -> None:
    # A provider with no history sells a course with a one-minute refund window.
    provider_key, learner_key = fresh_key(stack.rpc_url), fresh_key(stack.rpc_url)
    provider = Account.from_key(provider_key).address
    market = Market(stack.rpc_url, stack.contract("CourseMarket"))
    price = 2 * 10**16  # 0.02 ETH
    fee = price * market.fee_bps() // 10_000
    net = price - fee
    assert fee > 0, "the demo market charges a platform fee"
    course_id = market.create_course(provider_key, "Payout Ledger Workshop", 60)
    market.set_price(provider_key, course_id, NATIVE, price)

    app: App = open_app(provider_key, path="/provider")
    page = app.page
    app.sign_in()
    ledger = page.locator("section.payouts")
    ledger.get_by_text("No payouts yet.").wait_for()

    # The sale matures: its escrow bucket is released by the withdrawal itself.
    market.buy_with_native(learner_key, course_id, price)
    increase_time(stack.rpc_url, 2 * 24 * 3600)
    assert market.releasable_of(provider, NATIVE) == (net, fee)
    assert market.withdrawable_of(provider, NATIVE) == net
    page.reload()
    eth_row = page.locator(f'.balances [data-chain-id="{FIRST_CHAIN}"] tr[data-token="ETH"]')
    withdraw = eth_row.get_by_role("button", name="Withdraw")
    wait_mining(stack.rpc_url, withdraw.is_enabled, timeout=30, what="a withdrawable balance")
    assert token_text(net, 18, "ETH") in eth_row.inner_text()
    withdraw.click()
    status = page.locator('[data-testid="withdraw-status"][data-phase="confirmed"]')
    status.wait_for()
    tx_hash = status.locator("code").get_attribute("title")
    assert market.withdrawable_of(provider, NATIVE) == 0

    # The page polls the ledger until the indexer has recorded both events of the withdrawal.
    rows = ledger.get_by_role("region", name="Payout ledger").locator("tbody tr")
    wait_mining(stack.rpc_url, lambda: rows.count() == 2, timeout=120, what="the payout rows")
    withdrawn, released = rows.nth(0), rows.nth(1)
    assert withdrawn.get_attribute("data-kind") == "withdrawn"
    assert released.get_attribute("data-kind") == "released"
    cells = [row.locator("td").all_inner_texts() for row in (withdrawn, released)]
    assert cells[0][1:4] == ["Withdrawn", token_text(net, 18, "ETH"), "—"]
    assert cells[1][1:4] == ["Released", token_text(net, 18, "ETH"), token_text(fee, 18, "ETH")]
    for row in (withdrawn, released):
        assert row.locator("code").get_attribute("title") == tx_hash
    assert ledger.get_by_role("button", name="Load more").count() == 0
    app.screenshot("provider-payouts")

    # The API says the same, in base units.
    body = api_json(app, "/api/v1/provider/payouts")
    entries = [(e["kind"], e["amount"], e["fee"], e["txHash"]) for e in body["payouts"]]
    assert entries == [
        ("withdrawn", str(net), "0", tx_hash),
        ("released", str(net), str(fee), tx_hash),
    ]
    assert body["nextBefore"] is None

    # Pages of one entry: "Load more" walks the ledger back with nextBefore.
    page.route(
        re.compile(r"/api/v1/provider/payouts\?"),
        lambda route: route.continue_(url=re.sub(r"limit=\d+", "limit=1", route.request.url)),
    )
    page.reload()
    load_more = ledger.get_by_role("button", name="Load more")
    load_more.wait_for()
    assert rows.count() == 1 and rows.first.get_attribute("data-kind") == "withdrawn"
    load_more.click()
    rows.nth(1).wait_for()
    assert [r.get_attribute("data-kind") for r in rows.all()] == ["withdrawn", "released"]
    # That page was full, so one more (empty) page ends the ledger.
    load_more.click()
    load_more.wait_for(state="detached")
    assert rows.count() == 2


def test_switch_a_course_certificate_mode(open_app, stack: Stack) -> None:
    title = "Designing Token Economies"
    course = stack.course_by_title(title)
    assert course["certificateMode"] == "mint", "the demo course starts with minted certificates"
    path = f"/api/v1/courses/{course['id']}"

    app: App = open_app("provider", path="/provider")
    page = app.page
    app.sign_in()
    card = page.locator(f'article.manage-course[data-course-id="{course["id"]}"]')
    form = card.get_by_role("form", name=f"Certificates of {title}")
    mode = form.get_by_label("Certificates")
    save = form.get_by_role("button", name="Save mode")
    form.get_by_text("Tuition mints each certificate").wait_for()
    assert mode.input_value() == "mint" and save.is_disabled()

    try:
        # A refused change shows the API's message and changes nothing.
        page.route(
            f"**/api/v1/provider/courses/{course['id']}",
            lambda route: route.fulfill(
                status=503,
                content_type="application/json",
                body=json.dumps({"error": {"code": "unavailable", "message": "Try again soon."}}),
            ),
        )
        mode.select_option(label="Claimed by the learner")
        form.get_by_text("pay the gas").wait_for()
        save.click()
        form.get_by_role("alert").filter(has_text="Try again soon.").wait_for()
        page.unroute(f"**/api/v1/provider/courses/{course['id']}")
        assert api_json(app, path)["certificateMode"] == "mint"

        save.click()
        form.get_by_text("Saved: certificates claimed by the learner.").wait_for()
        assert api_json(app, path)["certificateMode"] == "voucher"
        assert stack.course_by_title(title)["certificateMode"] == "voucher"
        page.reload()
        form.get_by_label("Certificates").wait_for()
        assert mode.input_value() == "voucher" and save.is_disabled()

        # Back to minted by the platform: the stack is shared by the other tests.
        mode.select_option(label="Minted by the platform")
        save.click()
        form.get_by_text("Saved: certificates minted by the platform.").wait_for()
        assert api_json(app, path)["certificateMode"] == "mint"
    finally:
        if stack.course_by_title(title)["certificateMode"] != "mint":
            api_json(
                app,
                f"/api/v1/provider/courses/{course['id']}",
                "PATCH",
                {"certificateMode": "mint"},
            )


def test_provider_publishes_its_record_and_verifiers_see_the_platforms_verification(
    open_app, stack: Stack
) -> None:
    provider_key = fresh_key(stack.rpc_url)
    provider = Account.from_key(provider_key).address
    market = Market(stack.rpc_url, stack.contract("CourseMarket"))
    onchain_id = market.create_course(provider_key, "Verified Issuers 101", 0)
    operator = Operator(
        stack.rpc_url,
        stack.keys["issuer"],
        stack.contract("CourseCertificate"),
        stack.contract("CourseMarket"),
    )
    token_id = operator.mint(Account.create().address, onchain_id, b"\x42" * 28)

    app: App = open_app(provider_key, path="/provider")
    page = app.page
    app.sign_in()
    card = page.get_by_test_id("public-record")
    card.get_by_text("No public record yet.").wait_for()
    card.get_by_label("Name").fill("  Verified School ")
    card.get_by_label("Website domain").fill("Verified.School")
    card.get_by_role("button", name="Publish on-chain").click()
    current = card.get_by_test_id("record-current")
    wait_mining(
        stack.rpc_url,
        lambda: current.is_visible() and "Verified School" in current.inner_text(),
        what="the indexer to mirror the published record",
    )
    assert "verified.school" in current.inner_text()
    assert card.get_by_test_id("record-verified").inner_text() == "not verified yet"

    # The platform verifies the record it reviewed (its key holds VERIFIER_ROLE).
    reviewed = bytes.fromhex(profile_hash("Verified School", "verified.school")[2:])
    operator._send(operator.certificate.functions.verifyProvider(provider, reviewed))

    def verified() -> bool:
        app.goto("/provider")
        badge = page.get_by_test_id("record-verified")
        badge.wait_for()
        return badge.inner_text() == "verified by the platform"

    wait_mining(stack.rpc_url, verified, what="the indexer to mirror the verification")

    # A verifier reading one of this provider's certificates sees the platform vouch for it
    # (and the provider's website name its address).
    stack.sites.publish("verified.school", (31337, provider))
    app.goto(f"/verify/{token_id}")
    page.get_by_test_id("verdict").filter(has_text="Valid").wait_for()
    assert "verified by the platform" in page.get_by_test_id("issuer-verified").inner_text()

    # The second chain's certificate contract holds its own record, and its own verification.
    second = stack.rpc_on(SECOND_CHAIN)
    rpc(second, "anvil_setBalance", [provider, hex(10**18)])
    app.goto("/provider")
    card.get_by_label("Chain").select_option(label="Anvil 31338")
    card.get_by_text("No public record yet.").wait_for()
    card.get_by_label("Name").fill("Verified School")
    card.get_by_label("Website domain").fill("verified.school")
    card.get_by_role("button", name="Publish on-chain").click()
    wait_mining(
        second,
        lambda: current.is_visible() and "Verified School" in current.inner_text(),
        what="the second chain's indexer to mirror the record",
    )
    assert app.wallet.chain_id == SECOND_CHAIN
    assert card.get_by_test_id("record-verified").inner_text() == "not verified yet"


def test_admin_verifies_a_provider_from_the_admin_view(open_app, stack: Stack) -> None:
    provider_key = fresh_key(stack.rpc_url)
    provider = Account.from_key(provider_key).address
    w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
    certificate = contract(w3, "CourseCertificate", stack.contract("CourseCertificate"))
    publish = certificate.functions.setProviderProfile("Reviewed Academy", "rev.academy")
    send(w3, provider_key, publish)

    app: App = open_app("admin", path="/admin")
    page = app.page
    app.sign_in()
    page.locator("header").get_by_role("link", name="Admin").wait_for()
    row = page.locator(f'[data-testid="provider-review"][data-address="{provider}"]')

    def listed() -> bool:
        app.goto("/admin")
        page.get_by_role("heading", name="Providers' public records").wait_for()
        return row.is_visible()

    wait_mining(stack.rpc_url, listed, what="the indexer to mirror the provider's record")
    assert row.get_by_test_id("provider-verified").inner_text() == "not verified"
    row.get_by_role("button", name="Verify").click()
    row.get_by_role("alert").filter(has_text="audit log").wait_for()  # a reason is required
    row.get_by_label("Reason (for the audit log)").fill("website checked by support")
    row.get_by_role("button", name="Verify").click()
    wait_mining(
        stack.rpc_url,
        lambda: row.get_by_test_id("provider-verified").inner_text().startswith("verified"),
        what="the worker's verifyProvider and the indexer's mirror",
    )
    assert "recorded on-chain" in row.get_by_test_id("provider-request").inner_text()
    name, domain, verified, _at, verified_by = certificate.functions.providerRecord(provider).call()
    assert (name, domain, verified) == ("Reviewed Academy", "rev.academy", True)
    assert verified_by == Account.from_key(stack.keys["operator"]).address

    # The decision is in the audit log, with the admin's reason.
    entries = page.evaluate(
        "(url) => fetch(url).then((r) => r.json())",
        f"/api/v1/admin/audit?subjectType=provider&subjectId={provider}",
    )
    requested = [e for e in entries if e["action"] == "provider.verify_requested"]
    assert [e["reason"] for e in requested] == ["website checked by support"]
    # ...and so is the chain's answer, mirrored by the indexer (newest first).
    assert entries[0]["action"] == "provider.verified"

    # And the admin takes it back.
    row.get_by_label("Reason (for the audit log)").fill("domain expired")
    row.get_by_role("button", name="Remove verification").click()
    wait_mining(
        stack.rpc_url,
        lambda: row.get_by_test_id("provider-verified").inner_text() == "not verified",
        what="the worker's unverifyProvider and the indexer's mirror",
    )
    assert certificate.functions.providerRecord(provider).call()[2] is False


def test_the_admin_view_is_refused_to_other_wallets(open_app, stack: Stack) -> None:
    app: App = open_app(fresh_key(stack.rpc_url), path="/admin")
    app.sign_in()
    app.page.get_by_role("alert").filter(has_text="not one").wait_for()
    assert app.page.locator("header").get_by_role("link", name="Admin").count() == 0


def test_provider_revokes_a_certificate_from_the_dashboard(open_app, stack: Stack) -> None:
    operator = Operator(
        stack.rpc_url,
        stack.keys["issuer"],
        stack.contract("CourseCertificate"),
        stack.contract("CourseMarket"),
    )
    learner = Account.create().address
    token_id = operator.mint(learner, 1, b"\x51" * 28)  # a demo course of the demo provider

    app: App = open_app("provider", path="/provider")
    page = app.page
    app.sign_in()
    row = page.locator('[data-testid="issued-certificate"]').filter(
        has=page.locator(f'code[title="{learner}"]')
    )

    def listed() -> bool:
        app.goto("/provider")
        page.get_by_role("heading", name="Certificates").wait_for()
        return row.count() == 1

    wait_mining(stack.rpc_url, listed, what="the indexer to mirror the operator's mint")
    row.get_by_role("button", name="Revoke…").click()
    row.get_by_label("Reason").select_option(label="Academic misconduct")
    row.get_by_label("Note").fill("plagiarised the capstone")
    row.get_by_role("button", name="Revoke certificate").click()
    row.get_by_text("revocation sent; waiting for the chain").wait_for()
    wait_mining(
        stack.rpc_url,
        lambda: row.get_attribute("data-status") == "revoked",
        what="the worker's revoke and the indexer's mirror",
    )
    assert "academic misconduct: plagiarised the capstone" in row.inner_text()
    facts = operator.certificate.functions.verify(token_id).call()
    assert facts[6] is True and facts[8] == 2  # revoked, reason academic misconduct

    app.goto(f"/verify/{token_id}")
    page.get_by_test_id("verdict").filter(has_text="Revoked").wait_for()
    assert "academic misconduct" in page.get_by_test_id("step-status").inner_text()


def test_provider_onboards_for_card_payouts_and_sees_a_card_sale_reach_its_bank(
    open_app, stack: Stack
) -> None:
    provider: App = open_app(fresh_key(stack.rpc_url), path="/provider")
    page = provider.page
    provider.sign_in()
    section = page.get_by_test_id("card-payouts")
    section.get_by_text("Set up a Stripe account to be paid").wait_for()
    section.get_by_role("button", name="Set up card payouts").click()

    # Stripe's hosted onboarding (the stand-in's), then back to the dashboard.
    page.get_by_role("heading", name="Set up payouts").wait_for()
    page.get_by_role("button", name="Submit details").click()
    page.wait_for_url(re.compile(r"/provider\?connect=return$"))
    status = section.get_by_test_id("connect-status")
    status.wait_for()
    assert "Ready: card sales are paid to your Stripe account acct_" in status.inner_text()
    account_id = status.locator("code").inner_text()
    assert section.get_by_role("button", name=re.compile("Set up|Continue")).count() == 0
    section.get_by_text("No card revenue yet.").wait_for()

    # A course of this provider with a card price, bought by a learner by card.
    course = api_json(provider, "/api/v1/provider/courses", "POST", {"title": "Card Payouts 101"})
    api_json(
        provider,
        f"/api/v1/provider/courses/{course['id']}/fiat-price",
        "PUT",
        {"amount": "1999", "currency": "usd"},
    )
    api_json(provider, f"/api/v1/provider/courses/{course['id']}", "PATCH", {"status": "published"})
    learner: App = open_app(fresh_key(stack.rpc_url), path=f"/courses/{course['id']}")
    learner.sign_in()
    learner.page.get_by_test_id("buy-card").click()
    learner.page.wait_for_url(re.compile(re.escape(stack.stripe_url) + r"/pay/"))
    learner.page.get_by_role("button", name=re.compile("^Pay")).click()
    learner.page.locator('[data-testid="checkout-return"][data-status="paid"]').wait_for()

    # The provider's share (the market's fee taken by the platform) is pending at Stripe.
    fee_bps = (
        contract(
            Web3(Web3.HTTPProvider(stack.rpc_url)), "CourseMarket", stack.contract("CourseMarket")
        )
        .functions.feeBps()
        .call()
    )
    net = 1999 - 1999 * fee_bps // 10_000
    usd = lambda minor: f"${minor // 100}.{minor % 100:02d}"  # noqa: E731
    row = section.get_by_test_id("card-balance-usd")

    def shows(pending: str, available: str) -> bool:
        provider.goto("/provider")
        row.wait_for()
        cells = row.locator("td").all_inner_texts()
        return cells == [pending, available]

    wait_mining(stack.rpc_url, lambda: shows(usd(net), "$0.00"), what="the pending card revenue")
    # Stripe settles the funds, then pays them out to the provider's bank.
    for action in ("settle", "payout"):
        reply = httpx.post(f"{stack.stripe_url}/_fake/accounts/{account_id}/{action}", timeout=30)
        assert reply.status_code == 200, reply.text
    assert shows("$0.00", "$0.00")
    per_course = (
        page.get_by_test_id("sales-by-course").locator("tr").filter(has_text="Card Payouts 101")
    )
    assert per_course.locator("td").all_inner_texts() == [
        "Card Payouts 101",
        "Card",
        "1",
        "$19.99",
        "$0.00",
        usd(1999 - net),
    ]
    payout = section.get_by_test_id("card-payout")
    assert payout.count() == 1 and usd(net) in payout.inner_text() and "paid" in payout.inner_text()
    provider.screenshot("provider-card-payouts")

    # The provider refunds the sale after the payout: Stripe reverses its transfer and refunds
    # the platform's fee, so the provider's Stripe balance goes negative by its share.
    sale = page.locator('tr[data-rail="card"]').filter(has_text="Card Payouts 101")
    sale.get_by_role("button", name="Refund").click()

    def refunded() -> bool:
        provider.goto("/provider")
        sale.wait_for()
        return sale.get_attribute("data-status") == "refunded" and shows("$0.00", "-" + usd(net))

    wait_mining(stack.rpc_url, refunded, what="the refund to reach the order and the balance")

    # A second sale is disputed and the dispute lost: Stripe takes the whole payment from the
    # platform, and the worker takes the provider's share back (its transfer reversed).
    learner.goto(f"/courses/{course['id']}")
    learner.page.get_by_test_id("buy-card").click()
    learner.page.wait_for_url(re.compile(re.escape(stack.stripe_url) + r"/pay/"))
    learner.page.get_by_role("button", name=re.compile("^Pay")).click()
    learner.page.locator('[data-testid="checkout-return"][data-status="paid"]').wait_for()
    wait_mining(stack.rpc_url, lambda: shows(usd(net), "-" + usd(net)), what="the second sale")
    stripe = httpx.Client(base_url=stack.stripe_url, timeout=30)
    completed = stripe.get("/_fake/events", params={"type": "checkout.session.completed"})
    intent_id = completed.json()["data"][-1]["data"]["object"]["payment_intent"]  # the newest
    intent = stripe.get(
        f"/v1/payment_intents/{intent_id}", headers={"Authorization": "Bearer sk_test_local"}
    ).json()
    opened = stripe.post(f"/_fake/charges/{intent['latest_charge']}/dispute").json()
    closed = stripe.post(
        f"/_fake/disputes/{opened['data']['object']['id']}/close", json={"won": False}
    )
    assert closed.status_code == 200, closed.text
    lost = page.locator('tr[data-rail="card"][data-status="lost"]').filter(
        has_text="Card Payouts 101"
    )

    def taken_back() -> bool:
        return shows("$0.00", "-" + usd(net)) and lost.count() == 1

    wait_mining(stack.rpc_url, taken_back, what="the worker to reverse the provider's transfer")
