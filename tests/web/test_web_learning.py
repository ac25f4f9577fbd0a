"""Browser: gated lessons, progress marks, course completion and the certificate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import App, Stack
from websupport import wait_mining

pytestmark = [pytest.mark.browser, pytest.mark.chain, pytest.mark.slow]

TITLE = "Smart Contract Security Review"


def test_complete_a_course_and_get_the_certificate(open_app, stack: Stack, tmp_path: Path) -> None:
    app: App = open_app("anvil9")
    page = app.page
    course = stack.course_by_title(TITLE)
    cid = course["id"]
    total = course["lessonCount"]
    assert total >= 1, "the demo course needs lessons"

    # Gated: signed in but not entitled.
    app.goto(f"/courses/{cid}/lessons/1")
    app.sign_in()
    page.get_by_role("link", name="Buy the course to open it").wait_for()

    # Buy with ETH.
    app.goto(f"/courses/{cid}")
    page.get_by_role("radio", name=re.compile("ETH")).check()
    page.get_by_test_id("buy-crypto").click()
    page.get_by_test_id("owned").wait_for(timeout=60_000)
    page.get_by_role("link", name="Start learning").click()

    for n in range(1, total + 1):
        page.get_by_test_id("lesson").wait_for()
        page.get_by_text(f"Lesson {n} of {total}").wait_for()
        if n == 1:
            app.screenshot("lesson")
        page.get_by_test_id("complete-lesson").click()
        page.get_by_test_id("lesson-done").wait_for()
        # The outline marks it.
        nav_item = page.get_by_role("navigation", name="Lessons").locator("li").nth(n - 1)
        nav_item.get_by_label("completed").wait_for()
        if n < total:
            page.get_by_role("link", name="Next →").click()

    page.get_by_role("heading", name=re.compile("Course completed")).wait_for()
    panel = page.get_by_test_id("certificate-panel")
    panel.wait_for()

    def settled() -> str | None:
        status = panel.get_attribute("data-status")
        return status if status in ("minted", "claimable") else None

    status = wait_mining(stack.rpc_url, settled, timeout=120, what="the certificate")
    if status == "claimable":
        # Voucher mode: the learner claims and pays the gas.
        app.screenshot("certificate-claimable", full_page=False)
        panel.get_by_role("button", name="Claim certificate").click()
        wait_mining(
            stack.rpc_url,
            lambda: panel.get_attribute("data-status") == "minted",
            what="the claimed certificate",
        )
    panel.get_by_text("Certificate minted.").wait_for()
    app.screenshot("certificate")

    # Account page: the course, both kinds of history, the certificate.
    page.get_by_role("link", name="My account").click()
    page.get_by_role("heading", name="Certificates").wait_for()
    item = page.get_by_test_id("certificate-item").filter(has_text=TITLE)
    item.wait_for()
    assert item.get_attribute("data-status") == "minted"
    page.locator('tr[data-rail="crypto"]').first.wait_for()
    with page.expect_download() as download:
        item.get_by_role("button", name="Download record (JSON)").click()
    record_file = tmp_path / "record.json"
    record_file.write_bytes(Path(download.value.path()).read_bytes())
    assert json.loads(record_file.read_text())["record"]["learner"] == app.wallet.address
    app.screenshot("account")

    # Its verify page, from the chain, matches the downloaded record.
    item.get_by_role("link", name="View certificate").click()
    page.get_by_test_id("verdict").filter(has_text="Valid").wait_for()
    assert page.get_by_test_id("holder").inner_text() == app.wallet.address
    page.get_by_label("Certificate JSON file").set_input_files(str(record_file))
    page.get_by_test_id("record-check").filter(has_text="Match.").wait_for()
