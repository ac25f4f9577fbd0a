"""Browser: connecting a wallet, Sign-In with Ethereum, wrong network, rejected signatures."""

from __future__ import annotations

import re

import pytest
from conftest import PHONE, App, Stack

pytestmark = [pytest.mark.browser, pytest.mark.chain]


def test_sign_in_survives_reload_and_signs_out(open_app, stack: Stack) -> None:
    app: App = open_app("learner")
    page = app.page
    app.screenshot("catalog")
    # EIP-6963 discovery lists the wallet by its announced name.
    page.get_by_test_id("connect-wallet").click()
    dialog = page.get_by_role("dialog", name="Connect a wallet")
    dialog.get_by_role("button", name="Tuition Test Wallet").click()
    page.get_by_test_id("wallet-address").wait_for()
    assert app.wallet.address[:6] in page.get_by_test_id("wallet-address").inner_text()

    page.locator("header").get_by_role("button", name="Sign in").click()
    page.locator("header").get_by_role("button", name="Sign out").wait_for()
    # The EIP-4361 message the wallet signed.
    _, params = next(c for c in app.wallet.calls if c[0] == "personal_sign")
    message = bytes.fromhex(params[0][2:]).decode()
    host = stack.api_url.removeprefix("http://")
    assert message.startswith(f"{host} wants you to sign in with your Ethereum account:\n")
    assert f"\n{app.wallet.address}\n\n" in message
    for field in ("URI: ", "Version: 1", "Chain ID: 31337", "Nonce: ", "Issued At: "):
        assert f"\n{field}" in message
    assert "\nExpiration Time: " in message

    # The session cookie is HttpOnly: the page cannot read it, the API still knows us.
    assert "tuition_session" not in page.evaluate("document.cookie")
    page.reload()
    page.locator("header").get_by_role("button", name="Sign out").wait_for()
    page.get_by_role("link", name="My account").click()
    page.get_by_text(f"Signed in as {app.wallet.address}").wait_for()

    page.locator("header").get_by_role("button", name="Sign out").click()
    page.locator("header").get_by_role("button", name="Sign in").wait_for()
    page.reload()
    page.locator("header").get_by_role("button", name="Sign in").wait_for()
    assert page.locator("header").get_by_role("button", name="Sign out").count() == 0


def test_rejected_signature_shows_a_message_and_changes_nothing(open_app) -> None:
    app: App = open_app("anvil5")
    page = app.page
    app.connect_wallet()
    app.wallet.reject_next("personal_sign")
    page.locator("header").get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert").filter(has_text="rejected")
    alert.wait_for()
    assert "Nothing was changed" in alert.inner_text()
    app.screenshot("sign-in-rejected", full_page=False)
    # Still signed out, here and for the server.
    assert page.locator("header").get_by_role("button", name="Sign in").is_enabled()
    me = page.evaluate("fetch('/api/v1/auth/me').then(r => r.status)")
    assert me == 401
    # Trying again works.
    page.locator("header").get_by_role("button", name="Sign in").click()
    page.locator("header").get_by_role("button", name="Sign out").wait_for()


def test_rejected_connection_request(open_app) -> None:
    app: App = open_app("anvil5")
    page = app.page
    app.wallet.reject_next("eth_requestAccounts")
    page.get_by_test_id("connect-wallet").click()
    page.get_by_role("button", name="Tuition Test Wallet").click()
    page.get_by_role("dialog").get_by_role("alert").filter(has_text="rejected").wait_for()
    assert page.get_by_test_id("wallet-address").count() == 0


def test_wrong_network_prompt_and_switch(open_app) -> None:
    app: App = open_app("anvil6", chain_id=1)
    page = app.page
    app.connect_wallet()
    banner = page.get_by_test_id("wrong-network")
    banner.wait_for()
    assert "Wrong network" in banner.inner_text()
    assert page.locator("header").get_by_role("button", name="Sign in").is_disabled()
    app.screenshot("wrong-network", full_page=False)
    banner.get_by_role("button", name=re.compile("Switch to")).click()
    banner.wait_for(state="detached")
    assert app.wallet.chain_id == 31337
    assert "wallet_switchEthereumChain" in app.wallet.methods_called()
    app.sign_in()


def test_unknown_chain_is_added_then_switched(open_app) -> None:
    # A wallet that has never seen the chain answers 4902; the app adds it.
    app: App = open_app("anvil6", chain_id=1, known_chains={1})
    page = app.page
    app.connect_wallet()
    page.get_by_test_id("wrong-network").get_by_role("button").click()
    page.get_by_test_id("wrong-network").wait_for(state="detached")
    calls = app.wallet.methods_called()
    assert calls.index("wallet_switchEthereumChain") < calls.index("wallet_addEthereumChain")
    add = next(p for m, p in app.wallet.calls if m == "wallet_addEthereumChain")[0]
    assert add["chainId"] == "0x7a69" and add["rpcUrls"]


def test_phone_layout_and_keyboard(open_app) -> None:
    app: App = open_app("learner", viewport=PHONE)
    page = app.page
    # Nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    app.screenshot("phone-catalog")
    # Keyboard: the skip link comes first, then the menu opens with Enter.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    menu = page.get_by_role("button", name="Menu")
    menu.focus()
    page.keyboard.press("Enter")
    assert menu.get_attribute("aria-expanded") == "true"
    page.get_by_role("link", name="Verify a certificate").wait_for()
    app.screenshot("phone-menu", full_page=False)


def test_walletconnect_option_only_with_a_project_id(browser, stack: Stack) -> None:
    """No project id configured (the test stack): no WalletConnect option. With one, it shows
    (connecting needs WalletConnect's relay, which this machine cannot reach)."""
    import json as _json

    for project_id in (None, "test-project-id"):
        context = browser.new_context(base_url=stack.api_url)
        page = context.new_page()

        def patcher(value):
            def patch_config(route):
                reply = route.fetch()
                body = reply.json()
                body["walletConnectProjectId"] = value
                route.fulfill(response=reply, body=_json.dumps(body))

            return patch_config

        page.route("**/api/v1/config", patcher(project_id))
        page.goto("/")
        page.get_by_test_id("connect-wallet").click()
        dialog = page.get_by_role("dialog", name="Connect a wallet")
        dialog.wait_for()
        option = dialog.get_by_role("button", name="WalletConnect")
        if project_id:
            option.wait_for()
        else:
            page.wait_for_timeout(300)
            assert option.count() == 0
            # No injected wallet in this context either: the dialog says what to do.
            assert "No wallet found" in dialog.inner_text()
        context.close()


def test_phone_course_page(open_app, stack: Stack) -> None:
    app: App = open_app("learner", viewport=PHONE)
    course = stack.course_by_title("Solidity from Zero")
    app.goto(f"/courses/{course['id']}")
    app.page.get_by_role("heading", level=1, name="Solidity from Zero").wait_for()
    app.page.get_by_role("heading", name="Buy this course").wait_for()
    assert app.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    app.screenshot("phone-course")
