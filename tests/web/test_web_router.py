"""Serving the built web app from FastAPI (no browser): SPA fallback, assets, reserved paths,
and the public config endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.core.config import Settings
from backend.core.errors import install_error_handlers
from backend.web.config_router import build_config
from backend.web.config_router import router as config_router
from backend.web.router import content_security_policy, is_reserved, mount_web

ESN = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
USDC = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"
INDEX = "<!doctype html><title>Tuition</title><div id=app></div>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


@pytest.fixture
def client(dist: Path, tmp_path: Path) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/v1/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(config_router)
    mount_web(app, dist)
    return TestClient(app)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/courses/3",
        "/courses/3/lessons/2",
        "/verify/123",
        "/checkout/return",
        "/account",
        "/provider",
    ],
)
def test_client_routes_get_the_app_shell(client: TestClient, path: str) -> None:
    reply = client.get(path, params={"session_id": "cs_1"} if "checkout" in path else None)
    assert reply.status_code == 200
    assert reply.text == INDEX
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["cache-control"] == "no-cache"
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_assets_are_served_immutable(client: TestClient) -> None:
    reply = client.get("/assets/index-abc123.js")
    assert reply.status_code == 200
    assert "immutable" in reply.headers["cache-control"]
    assert client.get("/favicon.svg").text == "<svg/>"


def test_missing_asset_is_404_not_html(client: TestClient) -> None:
    reply = client.get("/assets/index-old.js")
    assert reply.status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope", "/api", "/docs/x", "/openapi.json/x", "/metrics", "/readyz", "/healthz/x"],
)
def test_api_and_ops_paths_are_never_shadowed(client: TestClient, path: str) -> None:
    reply = client.get(path)
    assert reply.status_code == 404
    assert reply.headers["content-type"].startswith("application/json")
    assert "error" in reply.json()


def test_real_routes_still_win(client: TestClient) -> None:
    assert client.get("/api/v1/ping").json() == {"pong": True}
    assert client.get("/healthz").json() == {"status": "ok"}


def test_no_path_traversal(client: TestClient, dist: Path) -> None:
    (dist.parent / "secret.txt").write_text("secret")
    reply = client.get("/..%2Fsecret.txt")
    assert "secret" not in reply.text


def test_unbuilt_app_says_how_to_build(tmp_path: Path) -> None:
    app = FastAPI()
    mount_web(app, tmp_path / "nothing")
    reply = TestClient(app).get("/courses/1")
    assert reply.status_code == 503
    assert "npm run build:web" in reply.text


def test_reserved_prefixes() -> None:
    assert is_reserved("/api/v1/courses")
    assert is_reserved("/docs")
    assert not is_reserved("/apiary")
    assert not is_reserved("/verify/1")


def test_config_endpoint_reads_the_deployment(tmp_path: Path) -> None:
    deployment = {
        "chainId": 31337,
        "contracts": {
            "CourseMarket": {"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
            "CourseCertificate": {"address": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"},
            "ESN": {
                "address": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
                "symbol": "ESN",
                "decimals": 18,
            },
            "USDC": {
                "address": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
                "symbol": "USDC",
                "decimals": 6,
            },
        },
    }
    (tmp_path / "local.json").write_text(json.dumps(deployment))
    settings = Settings(deployments_dir=tmp_path, network="local", walletconnect_project_id="")
    config = build_config(settings).model_dump(by_alias=True)
    assert config["chainId"] == 31337
    assert config["chainName"] == "Anvil (local)"
    assert config["contracts"]["market"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    symbols = {t["symbol"]: t for t in config["tokens"]}
    assert symbols["ETH"]["native"] and symbols["ETH"]["decimals"] == 18
    assert symbols["USDC"]["decimals"] == 6 and symbols["USDC"]["name"] == "USD Coin"
    assert config["walletConnectProjectId"] is None  # empty: the option is hidden
    assert config["deployed"] is True
    assert config["rpcUrl"] == settings.rpc_url


def test_config_without_deployment(tmp_path: Path) -> None:
    settings = Settings(deployments_dir=tmp_path, network="nowhere")
    config = build_config(settings)
    assert config.contracts.market is None
    assert [t.symbol for t in config.tokens] == ["ETH"]
    assert config.deployed is False


def test_csp_allows_the_rpc_and_walletconnect_only_when_configured() -> None:
    plain = content_security_policy(Settings(rpc_url="http://127.0.0.1:8545"))
    assert "connect-src 'self' http://127.0.0.1:8545" in plain
    assert "walletconnect" not in plain.split("connect-src")[1].split(";")[0]
    wc = content_security_policy(Settings(walletconnect_project_id="abc"))
    assert "wss://relay.walletconnect.org" in wc


def test_config_lists_every_configured_chain_for_wallets_to_add_and_switch_to(
    tmp_path: Path,
) -> None:
    market = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    (tmp_path / "local.json").write_text(
        json.dumps({"chainId": 31337, "contracts": {"CourseMarket": {"address": market}}})
    )
    # The second chain is configured but not deployed yet: listed, not deployed.
    settings = Settings(
        deployments_dir=tmp_path,
        network="local",
        networks=[
            {"name": "local", "chain_id": 31337, "rpc_url": "http://127.0.0.1:8545"},
            {
                "name": "polygon",
                "chain_id": 137,
                "rpc_url": "http://node.internal:8545",
                "public_rpc_url": "https://polygon.example/rpc",
                "native_symbol": "POL",
                "explorer_url": "https://polygonscan.com",
                "confirmations": 128,
                "reorg_window": 256,
            },
        ],
    )

    config = build_config(settings).model_dump(by_alias=True)

    assert config["chainId"] == 31337 and config["contracts"]["market"] == market
    first, second = config["networks"]
    assert (first["chainId"], first["network"], first["deployed"]) == (31337, "local", True)
    assert second == {
        "chainId": 137,
        "network": "polygon",
        "chainName": "Polygon",
        "rpcUrl": "https://polygon.example/rpc",  # the public one, never the backend's node
        "nativeCurrency": {"name": "POL", "symbol": "POL", "decimals": 18},
        "blockExplorerUrl": "https://polygonscan.com",
        "contracts": {"market": None, "certificate": None},
        "deployBlock": 0,
        "tokens": [
            {
                "address": "0x0000000000000000000000000000000000000000",
                "symbol": "POL",
                "name": "POL",
                "decimals": 18,
                "native": True,
            }
        ],
        "deployed": False,
    }
    csp = content_security_policy(settings)
    assert "https://polygon.example" in csp and "node.internal" not in csp
