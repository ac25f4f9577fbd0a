"""Browser: the public verify page reads certificates from the chain, no wallet needed."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from conftest import App, Stack
from eth_account import Account
from support.verification import Case, World, build_world
from support.web import Operator, fresh_key, wait_mining
from typer.testing import CliRunner

from backend.certificates.service import canonical_record_bytes, record_hash
from backend.cli import app as cli
from backend.core.config import get_settings

pytestmark = [pytest.mark.browser, pytest.mark.chain]


def make_record(learner: str, course_id: int, title: str) -> dict:
    return {
        "version": 1,
        "course": {"id": course_id, "onchainId": course_id, "title": title},
        "issuer": "0x0000000000000000000000000000000000000001",
        "learner": learner,
        "name": "Zoë Ünïcode-Tester",  # non-ASCII: the canonical form keeps UTF-8 as is
        "grade": "completed",
        "completedAt": "2026-11-20T10:00:00Z",
        "salt": "0x" + secrets.token_hex(32),
    }


@pytest.fixture(scope="module")
def certificates(stack: Stack) -> dict:
    """One valid and one revoked certificate, minted by the operator straight on-chain."""
    operator = Operator(
        stack.rpc_url,
        stack.keys["issuer"],
        stack.contract("CourseCertificate"),
        stack.contract("CourseMarket"),
    )
    # Fresh holders (granted access first, as certificates need it): reruns never collide.
    valid_holder = Account.create().address
    revoked_holder = Account.create().address
    valid_record = make_record(valid_holder, 2, "Zero-Knowledge Proofs in Practice")
    revoked_record = make_record(revoked_holder, 1, "Solidity from Zero")
    valid_id = operator.mint(valid_holder, 2, bytes.fromhex(record_hash(valid_record)[2:]))
    revoked_id = operator.mint(revoked_holder, 1, bytes.fromhex(record_hash(revoked_record)[2:]))
    operator.revoke(revoked_id, 2)
    return {
        "valid": (valid_id, valid_holder, valid_record),
        "revoked": (revoked_id, revoked_holder, revoked_record),
    }


def test_verify_valid_certificate(open_app, certificates: dict, tmp_path: Path) -> None:
    token_id, holder, record = certificates["valid"]
    app: App = open_app("anvil9", path=f"/verify/{token_id}")  # no wallet connected
    page = app.page
    verdict = page.get_by_test_id("verdict")
    verdict.wait_for()
    assert "Valid" in verdict.inner_text()
    view = page.get_by_test_id("certificate-view")
    assert page.get_by_test_id("holder").inner_text() == holder
    assert "Zero-Knowledge Proofs in Practice" in view.inner_text()
    assert page.get_by_test_id("status").inner_text() == "Valid"
    # The on-chain SVG and the QR code to this page.
    image = page.locator("img.certificate-image")
    assert image.get_attribute("src").startswith("data:image/svg+xml")
    page.wait_for_function("document.querySelector('img.certificate-image').naturalWidth > 0")
    page.get_by_role("img", name="QR code linking to this verification page").wait_for()
    # Read from the chain's RPC, not from the API.
    assert "wallet_" not in " ".join(app.wallet.methods_called())

    # The matching record file.
    good = tmp_path / "record.json"
    good.write_text(json.dumps({"record": record}, ensure_ascii=False, indent=2))
    page.get_by_label("Certificate JSON file").set_input_files(str(good))
    check = page.get_by_test_id("record-check")
    check.wait_for()
    assert "Match." in check.inner_text()
    assert record_hash(record) in check.inner_text()
    assert canonical_record_bytes(record)  # the backend's own canonical form, hashed above
    app.screenshot("verify-valid")

    # An altered record does not match.
    bad = tmp_path / "altered.json"
    bad.write_text(json.dumps({**record, "grade": "distinction"}))
    page.get_by_label("Certificate JSON file").set_input_files(str(bad))
    page.get_by_test_id("record-check").filter(has_text="No match.").wait_for()

    # A downloadable PDF.
    with page.expect_download() as download:
        page.get_by_test_id("download-pdf").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")


def test_verify_revoked_certificate(open_app, certificates: dict) -> None:
    token_id, holder, _ = certificates["revoked"]
    app: App = open_app("anvil9", path=f"/verify/{token_id}")
    page = app.page
    verdict = page.get_by_test_id("verdict")
    verdict.wait_for()
    text = verdict.inner_text()
    assert "Revoked" in text and "academic misconduct" in text
    assert page.get_by_test_id("certificate-view").get_attribute("data-revoked") == "true"
    assert page.get_by_test_id("holder").inner_text() == holder
    app.screenshot("verify-revoked")


def test_verify_form_link_and_unknown_token(open_app, stack: Stack, certificates: dict) -> None:
    token_id, _, _ = certificates["valid"]
    app: App = open_app("anvil9", path="/verify")
    page = app.page
    assert page.get_by_label("Certificate contract address").input_value().lower() == (
        stack.contract("CourseCertificate").lower()
    )
    page.get_by_label("Certificate number or link").fill(f"{stack.api_url}/verify/{token_id}")
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"**/verify/{token_id}")
    page.get_by_test_id("verdict").filter(has_text="Valid").wait_for()

    # A token id never issued: "not verified", not an error page.
    app.goto("/verify/12345")
    alert = page.get_by_role("status").filter(has_text="Not verified")
    alert.or_(page.get_by_role("alert").filter(has_text="Not verified")).first.wait_for()
    # The stack runs two chains: the page looked on both, as `tuition verify` does.
    shown = page.locator("main").inner_text()
    assert "No certificate 12345 on any configured chain: webtest (31337), webtest-b" in shown
    # On one chain named, the answer is that chain's own.
    app.goto(f"/verify/12345?chain={31337}")
    page.get_by_test_id("step-exists").filter(has_text="was ever issued").wait_for()


def test_holder_removes_its_certificate_and_verifiers_see_it_removed(
    open_app, stack: Stack
) -> None:
    key = fresh_key(stack.rpc_url)
    holder = Account.from_key(key).address
    operator = Operator(
        stack.rpc_url,
        stack.keys["issuer"],
        stack.contract("CourseCertificate"),
        stack.contract("CourseMarket"),
    )
    record = make_record(holder, 2, "Zero-Knowledge Proofs in Practice")
    token_id = operator.mint(holder, 2, bytes.fromhex(record_hash(record)[2:]))

    app: App = open_app(key, path="/account")
    page = app.page
    app.sign_in()

    def mirrored() -> bool:
        mine = page.evaluate("() => fetch('/api/v1/me/certificates').then((r) => r.text())")
        return str(token_id) in mine

    wait_mining(stack.rpc_url, mirrored, what="the indexer to mirror the operator's mint")
    app.goto("/account")
    item = page.get_by_test_id("certificate-item")  # a fresh holder: its only certificate
    item.wait_for()
    assert item.get_attribute("data-status") == "minted"

    item.get_by_test_id("remove-certificate").click()
    item.get_by_test_id("confirm-remove").click()
    wait_mining(
        stack.rpc_url,
        lambda: item.get_attribute("data-status") == "removed",
        timeout=90,
        what="the indexer to see the removal",
    )
    assert "removed by its holder" in item.inner_text()
    assert app.wallet.methods_called().count("eth_sendTransaction") == 1
    onchain = operator.certificate.functions.balanceOf(holder).call()
    assert onchain == 0

    # A verifier reads the chain: removed, not missing.
    app.goto(f"/verify/{token_id}")
    page.get_by_test_id("verdict").filter(has_text="Removed").wait_for()
    assert page.get_by_test_id("status").inner_text() == "Removed by its holder"


def test_a_corrected_certificate_links_to_its_replacement(open_app, stack: Stack) -> None:
    key = fresh_key(stack.rpc_url)
    holder = Account.from_key(key).address
    operator = Operator(
        stack.rpc_url,
        stack.keys["issuer"],
        stack.contract("CourseCertificate"),
        stack.contract("CourseMarket"),
    )
    wrong = make_record(holder, 3, "Typo in the Titel")
    token_id = operator.mint(holder, 3, bytes.fromhex(record_hash(wrong)[2:]))
    right = make_record(holder, 3, "Typo in the Title")
    new_token_id = operator.reissue(token_id, bytes.fromhex(record_hash(right)[2:]))
    assert new_token_id != token_id

    app: App = open_app(key, path="/account")
    page = app.page
    app.sign_in()

    def mirrored() -> bool:
        mine = page.evaluate("() => fetch('/api/v1/me/certificates').then((r) => r.json())")
        return any(c.get("replacedByTokenId") == str(new_token_id) for c in mine) and any(
            c.get("tokenId") == str(new_token_id) for c in mine
        )

    wait_mining(stack.rpc_url, mirrored, what="the indexer to mirror the correction")
    app.goto("/account")
    old = page.locator('[data-testid="certificate-item"][data-status="revoked"]')
    old.get_by_test_id("replaced-by").get_by_role("link").click()
    page.wait_for_url(f"**/verify/{new_token_id}")
    page.get_by_test_id("verdict").filter(has_text="Valid").wait_for()


# ------------------------------------------------------------------ one answer, three surfaces


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    """One certificate of every kind a verifier meets (support/verification.py)."""
    return build_world(
        stack.rpc_url,
        stack.contract("CourseMarket"),
        stack.contract("CourseCertificate"),
        stack.keys["issuer"],
        stack.sites,
    )


def _cli_report(stack: Stack, case: Case, tmp_path: Path) -> dict:
    args = ["verify", str(case.token_id), "--contract", case.contract, "--json"]
    if case.document is not None:
        path = tmp_path / "record.json"
        path.write_bytes(case.document)
        args += ["--record", str(path)]
    result = CliRunner().invoke(cli, args)
    return json.loads(result.output)


def _api_report(stack: Stack, case: Case) -> dict:
    url = f"/api/v1/certificates/{case.token_id}/verification"
    with stack.api() as client:
        if case.document is None:
            reply = client.get(url, params={"contract": case.contract})
        else:
            record = json.loads(case.document)
            reply = client.post(url, params={"contract": case.contract}, json={"record": record})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _page_report(app: App, case: Case, tmp_path: Path) -> dict:
    page = app.page
    app.goto(f"/verify/{case.token_id}?contract={case.contract}")
    steps = page.get_by_test_id("steps")
    steps.wait_for()
    if case.document is not None:
        path = tmp_path / "document.json"
        path.write_bytes(case.document)
        page.get_by_label("Certificate JSON file").set_input_files(str(path))
        page.locator('[data-testid="step-integrity"]:not([data-status="not_checked"])').wait_for()
    items = steps.locator("li")
    return {
        "verdict": page.get_by_test_id("verdict-code").get_attribute("data-verdict"),
        "steps": [
            {"name": items.nth(i).get_attribute("data-testid")[len("step-") :],
             "status": items.nth(i).get_attribute("data-status")}
            for i in range(items.count())
        ],
    }  # fmt: skip


def _summary(report: dict) -> tuple[str, list[tuple[str, str]]]:
    return report["verdict"], [(s["name"], s["status"]) for s in report["steps"]]


def test_the_command_line_the_api_and_the_page_give_the_same_report(
    open_app, stack: Stack, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command line of a verifier on this machine, configured for this deployment.
    monkeypatch.setenv("TUITION_RPC_URL", stack.rpc_url)
    monkeypatch.setenv("TUITION_NETWORK", "webtest")
    monkeypatch.setenv("TUITION_DEPLOYMENTS_DIR", str(stack.devstack.config.deployments_dir))
    monkeypatch.setenv("TUITION_DOMAIN_LINK_URL", stack.sites.url_template)
    get_settings.cache_clear()
    app: App = open_app("anvil9", path="/verify")
    try:
        for name, case in world.cases.items():
            expected = (case.verdict, list(case.statuses.items()))
            cli_report = _cli_report(stack, case, tmp_path)
            api_report = _api_report(stack, case)
            assert _summary(cli_report) == expected, name
            assert api_report == cli_report, name
            assert _summary(_page_report(app, case, tmp_path)) == expected, name
    finally:
        get_settings.cache_clear()
    # The revoked one, as a verifier reads it on the page: why, when and by whom.
    app.goto(f"/verify/{world.cases['revoked'].token_id}")
    status = app.page.get_by_test_id("step-status")
    status.wait_for()
    assert "academic misconduct" in status.inner_text()
    assert world.operator in status.inner_text()
    app.screenshot("verify-steps-revoked")
