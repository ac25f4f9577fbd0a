"""Fixtures of the browser suite: the whole local stack (backend/devstack.py, on free ports, in a
temporary directory), Debian's Chromium driven by Playwright, and a test wallet per page.

Chromium: /usr/bin/chromium (`apt-get install -y chromium`), or TUITION_CHROMIUM. Without it
the browser tests skip with a loud reason; CI installs it through scripts/setup.

Screenshots: `app.screenshot(name)` writes docs/screenshots/<name>.png only when
TUITION_SCREENSHOTS=1 (to refresh the committed ones after a page's look changed); otherwise it
takes the same screenshot into the test's tmp_path, so the code path keeps working and the
working tree stays clean.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.wallet import TestWallet

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "backend" / "web"
DIST = WEB / "dist"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def screenshots_dir(tmp_path: Path) -> Path:
    """docs/screenshots with TUITION_SCREENSHOTS=1, else a throwaway directory."""
    return SCREENSHOTS if os.environ.get("TUITION_SCREENSHOTS") == "1" else tmp_path / "screenshots"


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
FIRST_CHAIN, SECOND_CHAIN = 31337, 31338
# Block explorers the stack's chains claim, so the app's explorer links can be checked.
EXPLORERS = {FIRST_CHAIN: "https://explorer-a.example", SECOND_CHAIN: "https://explorer-b.example"}


def anvil_key(index: int) -> str:
    """The private key of anvil's default account `index` (10 000 ETH each)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return "0x" + bytes(account.key).hex()


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("TUITION_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# ------------------------------------------------------------------ the built web app


def _newest_source_mtime() -> float:
    files = [*WEB.joinpath("src").rglob("*"), WEB / "index.html", WEB / "vite.config.ts"]
    files += list(WEB.joinpath("public").rglob("*"))
    return max(f.stat().st_mtime for f in files if f.is_file())


@pytest.fixture(scope="session")
def web_build() -> Path:
    """backend/web/dist, rebuilt when a source file is newer than the build."""
    index = DIST / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source_mtime():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to build the web app (npm run build:web)")
        result = subprocess.run(
            [npm, "run", "build:web"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"npm run build:web failed:\n{result.stdout}\n{result.stderr}")
    return DIST


# ------------------------------------------------------------------ the stack


@dataclass
class Stack:
    """What the tests need of the running stack."""

    api_url: str
    rpc_url: str
    stripe_url: str
    deployment: dict[str, Any]
    keys: dict[str, str]
    devstack: Any
    sites: Any = None  # support.verification.IssuerSites: the providers' websites
    # The second local chain (chain id 31338) and its deployment, when the stack runs two.
    second_rpc_url: str | None = None
    second_deployment: dict[str, Any] | None = None

    @property
    def rpc_urls(self) -> dict[int, str]:
        """Chain id → RPC URL of every chain of the stack."""
        urls = {FIRST_CHAIN: self.rpc_url}
        if self.second_rpc_url:
            urls[SECOND_CHAIN] = self.second_rpc_url
        return urls

    def rpc_on(self, chain_id: int) -> str:
        return self.rpc_urls[chain_id]

    def deployment_on(self, chain_id: int) -> dict[str, Any]:
        if chain_id == SECOND_CHAIN:
            assert self.second_deployment is not None, "the stack runs one chain"
            return self.second_deployment
        return self.deployment

    def contract_on(self, chain_id: int, name: str) -> str:
        return str(self.deployment_on(chain_id)["contracts"][name]["address"])

    def contract(self, name: str) -> str:
        return str(self.deployment["contracts"][name]["address"])

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30)

    def courses(self) -> list[dict[str, Any]]:
        with self.api() as client:
            reply = client.get("/api/v1/courses", params={"limit": 100})
            reply.raise_for_status()
            return list(reply.json()["items"])

    def course_by_title(self, title: str) -> dict[str, Any]:
        for course in self.courses():
            if course["title"] == title:
                return course
        raise AssertionError(f"no course titled {title!r} in the catalog")


def _tail_logs(state_dir: Path, lines: int = 40) -> str:
    out = []
    for log in sorted((state_dir / "logs").glob("*.log")):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name}\n" + "\n".join(text))
    return "\n".join(out)


def _enlist_issuer(rpc_url: str, keys: dict[str, str], deployment: dict[str, Any]) -> str:
    """The key tests use to act as the platform on-chain, apart from the worker's operator key."""
    from support.web import enlist_issuer

    contracts = deployment["contracts"]
    return enlist_issuer(
        rpc_url,
        keys["admin"],
        contracts["CourseMarket"]["address"],
        contracts["CourseCertificate"]["address"],
    )


@pytest.fixture(scope="session")
def stack(web_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """anvil + contracts + migrated database + API (serving the built app) + indexer + worker +
    Stripe fake, on free ports; the lead's orchestrator (backend/devstack.py) starts them."""
    from backend.core.dev_accounts import DEMO_KEYS
    from backend.devstack import DevStack, StackConfig, free_port

    keys = dict(DEMO_KEYS)
    for i in range(5, 10):
        keys[f"anvil{i}"] = anvil_key(i)
    external = os.environ.get("TUITION_WEB_STACK_API")
    if external:
        # Run against a stack that is already up (`tuition up`): TUITION_WEB_STACK_API, _RPC,
        # _STRIPE and _DEPLOYMENT (its deployments/<network>.json). Accounts must be fresh.
        rpc_url = os.environ.get("TUITION_WEB_STACK_RPC", "http://127.0.0.1:8545")
        deployment = json.loads(Path(os.environ["TUITION_WEB_STACK_DEPLOYMENT"]).read_text())
        keys["issuer"] = _enlist_issuer(rpc_url, keys, deployment)
        yield Stack(
            api_url=external.rstrip("/"),
            rpc_url=rpc_url,
            stripe_url=os.environ.get("TUITION_WEB_STACK_STRIPE", "http://127.0.0.1:12111"),
            deployment=deployment,
            keys=keys,
            devstack=None,
        )
        return

    # The providers' websites the domain link reads; the demo provider's names its address.
    from eth_account import Account
    from support.verification import IssuerSites

    from backend.chain.deploy import DEMO_PROVIDER_PROFILE

    sites = IssuerSites()
    provider = Account.from_key(keys["provider"]).address
    sites.publish(DEMO_PROVIDER_PROFILE[1], (FIRST_CHAIN, provider), (SECOND_CHAIN, provider))
    state = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        rpc_port=free_port(),
        second_rpc_port=free_port(),
        explorer_urls=EXPLORERS,
        api_port=free_port(),
        stripe_port=free_port(),
        state_dir=state,
        deployments_dir=state / "deployments",
        network="webtest",
        quiet=True,
        extra_env={"TUITION_DOMAIN_LINK_URL": sites.url_template},
    )
    dev = DevStack(config)
    try:
        dev.start()
    except Exception as exc:
        dev.stop()
        sites.close()
        pytest.fail(f"the local stack did not start: {exc}\n{_tail_logs(state)}")
    try:
        second_rpc_url = f"http://127.0.0.1:{config.second_rpc_port}"
        second_deployment = dev.deployments[f"{config.network}-b"]
        keys["issuer"] = _enlist_issuer(config.rpc_url, keys, dev.deployment)
        keys["issuer_b"] = _enlist_issuer(second_rpc_url, keys, second_deployment)
        yield Stack(
            api_url=config.api_url,
            rpc_url=config.rpc_url,
            stripe_url=config.stripe_url,
            deployment=dev.deployment,
            keys=keys,
            devstack=dev,
            sites=sites,
            second_rpc_url=second_rpc_url,
            second_deployment=second_deployment,
        )
    finally:
        dev.stop()
        sites.close()


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (one process for the session)."""
    path = chromium_path()
    if path is None:
        pytest.skip(
            "!!! BROWSER TESTS SKIPPED: Chromium not found. Install it with "
            "`apt-get install -y chromium` (scripts/setup does) or set TUITION_CHROMIUM. !!!"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("!!! BROWSER TESTS SKIPPED: the playwright package is not installed !!!")
    manager = sync_playwright().start()
    try:
        browser = manager.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:
        manager.stop()
        pytest.skip(f"!!! BROWSER TESTS SKIPPED: Chromium at {path} cannot start: {exc} !!!")
    try:
        yield browser
    finally:
        browser.close()
        manager.stop()


@dataclass
class App:
    """One browser context (fresh cookies and storage) with a test wallet, and its page."""

    page: Any
    wallet: TestWallet
    context: Any
    base_url: str
    console_errors: list[str]
    screenshot_dir: Path

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def connect_wallet(self) -> None:
        page = self.page
        page.get_by_test_id("connect-wallet").click()
        page.get_by_role("button", name="Tuition Test Wallet").click()
        page.get_by_test_id("wallet-address").wait_for()

    def sign_in(self) -> None:
        """Connect (if needed) and sign in with the header's button."""
        page = self.page
        if not page.get_by_test_id("wallet-address").is_visible():
            self.connect_wallet()
        page.locator("header").get_by_role("button", name="Sign in").click()
        page.locator("header").get_by_role("button", name="Sign out").wait_for()

    def choose_price(self, symbol: str, chain_id: int = FIRST_CHAIN) -> None:
        """Pick the course page's price in `symbol` on chain `chain_id`."""
        group = self.page.get_by_role("radiogroup", name=f"Anvil {chain_id}")
        group.get_by_role("radio", name=re.compile(rf"^{re.escape(symbol)}\b")).check()

    def screenshot(self, name: str, full_page: bool = True) -> Path:
        """Capture the page as <name>.png (see the module docstring for where)."""
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.screenshot_dir / f"{name}.png"
        # Let transitions and fonts settle.
        self.page.wait_for_timeout(150)
        self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        assert path.read_bytes().startswith(PNG_SIGNATURE), f"{path} is not a PNG"
        return path


class PageTrace:
    """What a page asked of the network and said on its console, for a failing test's report."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.started = time.monotonic()
        self.events: list[str] = []
        self.pending: dict[int, str] = {}
        self.api_responses: list[Any] = []
        page.on("response", self._response)
        page.on("console", lambda m: self._note(f"console.{m.type}: {m.text}"))
        page.on("request", self._request)
        page.on("requestfinished", lambda r: self._done(r, "finished"))
        page.on("requestfailed", lambda r: self._done(r, f"FAILED ({r.failure})"))
        page.on("framenavigated", lambda f: f.parent_frame or self._note(f"navigated {f.url}"))
        page.on("pageerror", lambda e: self._note(f"pageerror: {e}"))

    def _note(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:7.3f}s {text}")

    def _request(self, request: Any) -> None:
        self.pending[id(request)] = f"{request.method} {request.url}"
        self._note(f"-> {request.method} {request.url}")

    def _done(self, request: Any, how: str) -> None:
        self.pending.pop(id(request), None)
        self._note(f"<- {request.method} {request.url} {how}")

    def _response(self, response: Any) -> None:
        if "/api/" in response.url:
            self.api_responses = [*self.api_responses[-19:], response]

    def save(self, folder: Path, name: str) -> list[Path]:
        """Write the page's HTML, a screenshot and its last API responses into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        try:
            html = folder / f"{name}.html"
            html.write_text(self.page.content())
            shot = folder / f"{name}.png"
            self.page.screenshot(path=str(shot), full_page=True)
            saved += [html, shot]
        except Exception as exc:  # the page may be gone
            self._note(f"(page not saved: {exc})")
        lines = []
        for response in self.api_responses:
            try:
                body = response.text()[:2000]
            except Exception as exc:  # bodies of redirects, or of a page that navigated away
                body = f"(body unavailable: {exc})"
            lines.append(f"{response.request.method} {response.url} -> {response.status}\n{body}\n")
        responses = folder / f"{name}-api-responses.txt"
        responses.write_text("\n".join(lines))
        return [*saved, responses]

    def report(self) -> str:
        pending = "\n".join(f"  still pending: {p}" for p in self.pending.values())
        try:  # what the page showed when the test gave up
            shown = self.page.evaluate("() => document.body.innerText")[:3000]
        except Exception as exc:  # the page may be gone
            shown = f"(page text unavailable: {exc})"
        return "\n".join([*self.events[-60:], pending, "--- page text:", shown])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        # Next to the test log: var/ is the project's ignored scratch folder.
        folder = item.config.rootpath / "var" / "test-artifacts" / re.sub(r"\W+", "_", item.nodeid)
        for i, trace in enumerate(getattr(item, "page_traces", [])):
            saved = "\n".join(f"saved {path}" for path in trace.save(folder, f"page-{i}"))
            report.sections.append(
                (f"browser page {i}: network and console", f"{trace.report()}\n{saved}")
            )


@pytest.fixture
def open_app(
    browser: Any, stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., App]]:
    """Factory: `open_app(key_name, chain_id=31337, viewport=DESKTOP)` → App on the catalog."""
    opened: list[App] = []

    def factory(
        key: str = "learner",
        *,
        chain_id: int = 31337,
        known_chains: set[int] | None = None,
        viewport: dict[str, int] | None = None,
        path: str = "/",
    ) -> App:
        wallet = TestWallet(
            stack.rpc_url, stack.keys.get(key, key), chain_id=chain_id, rpc_urls=stack.rpc_urls
        )
        if known_chains is not None:
            wallet.known_chains = known_chains
        context = browser.new_context(
            viewport=viewport or DESKTOP, base_url=stack.api_url, locale="en-GB"
        )
        context.set_default_timeout(30_000)
        wallet.install(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        traces = request.node.__dict__.setdefault("page_traces", [])
        traces.append(PageTrace(page))
        app = App(page, wallet, context, stack.api_url, errors, screenshots_dir(tmp_path))
        opened.append(app)
        app.goto(path)
        page.locator("main h1").first.wait_for()
        return app

    yield factory
    for app in opened:
        app.context.close()
        app.wallet.close()
        assert not app.console_errors, f"uncaught errors in the page: {app.console_errors}"
