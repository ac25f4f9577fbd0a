"""`tuition verify` and the public API: a verifier checks a certificate from the chain alone,
step by step, and both answer the same.

Every kind of certificate of `support.verification.build_world` (valid, revoked, removed,
replaced, unverified issuer, a stranger's look-alike, a tampered document, an unknown token, a
contract that is not ours) gets the verdict and the step statuses it must.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from support.verification import IssuerSites, World, build_world
from typer.testing import CliRunner
from web3 import HTTPProvider, Web3

from backend.app import create_app
from backend.chain.deploy import deploy_all
from backend.chain.deployment import load_deployment
from backend.chain.toolchain import anvil_path
from backend.cli import app
from backend.core.config import Settings, get_settings
from backend.core.dev_accounts import DEMO_KEYS
from backend.core.ratelimit import MemoryRateLimiter
from backend.devstack import free_port, wait_until

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deployments")


@pytest.fixture(scope="module")
def world(deployments: Path) -> Iterator[World]:
    port = free_port()
    proc = subprocess.Popen(
        [str(anvil_path()), "--port", str(port), "--hardfork", "cancun", "--silent"]
    )
    rpc = f"http://127.0.0.1:{port}"
    sites = IssuerSites()
    try:
        wait_until(Web3(HTTPProvider(rpc)).is_connected, 30, "anvil")
        data = deploy_all(
            rpc_url=rpc,
            network="verify-test",
            deployments_dir=deployments,
            admin_key=DEMO_KEYS["admin"],
            operator_key=DEMO_KEYS["operator"],
            demo=False,
        )
        contracts = data["contracts"]
        built = build_world(
            rpc,
            contracts["CourseMarket"]["address"],
            contracts["CourseCertificate"]["address"],
            DEMO_KEYS["operator"],
            sites,
        )
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TUITION_RPC_URL", rpc)
            env.setenv("TUITION_NETWORK", "verify-test")
            env.setenv("TUITION_DEPLOYMENTS_DIR", str(deployments))
            env.setenv("TUITION_DOMAIN_LINK_URL", sites.url_template)
            get_settings.cache_clear()
            yield built
        get_settings.cache_clear()
    finally:
        sites.close()
        proc.terminate()
        proc.wait(timeout=10)


def _verify(token_id: int, *extra: str) -> Any:
    return CliRunner().invoke(app, ["verify", str(token_id), *extra])


def _case_args(world: World, name: str, tmp_path: Path) -> list[str]:
    case = world.cases[name]
    args = [str(case.token_id), "--contract", case.contract, "--json"]
    if case.document is not None:
        path = tmp_path / "record.json"
        path.write_bytes(case.document)
        args += ["--record", str(path)]
    return args


CASES = [
    "valid",
    "tampered document",
    "revoked",
    "removed by holder",
    "replaced",
    "look-alike course",
    "unverified issuer",
    "unknown token",
    "contract not ours",
]


@pytest.mark.parametrize("name", CASES)
def test_every_kind_of_certificate_gets_its_verdict_and_steps(
    world: World, name: str, tmp_path: Path
) -> None:
    case = world.cases[name]
    result = CliRunner().invoke(app, ["verify", *_case_args(world, name, tmp_path)])
    report = json.loads(result.output)
    assert report["verdict"] == case.verdict
    assert {s["name"]: s["status"] for s in report["steps"]} == case.statuses
    assert [s["name"] for s in report["steps"]] == list(case.statuses)
    assert result.exit_code == (0 if case.verdict == "valid" else 1)


def test_the_valid_certificate_shows_every_fact_a_verifier_needs(world: World) -> None:
    case = world.cases["valid"]
    result = _verify(case.token_id)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "PASS  exists" in out and "knownContract     True" in out
    assert "Verified Academy (verified.academy), verified by the platform" in out
    assert "domainLink        ok" in out and "Applied Cryptography" in out
    assert "----  integrity" in out  # no document given
    assert out.strip().endswith("VALID")


def test_a_revocation_says_why_when_and_by_whom(world: World, tmp_path: Path) -> None:
    report = json.loads(_verify(world.cases["revoked"].token_id, "--json").output)
    status = next(s for s in report["steps"] if s["name"] == "status")
    assert status["facts"]["state"] == "revoked"
    assert status["facts"]["reasonCode"] == 2
    assert status["facts"]["reason"] == "academic misconduct"
    assert status["facts"]["revokedBy"] == world.operator
    assert status["facts"]["revokedAt"].startswith("20")
    replaced = json.loads(_verify(world.cases["replaced"].token_id, "--json").output)
    facts = next(s for s in replaced["steps"] if s["name"] == "status")["facts"]
    assert facts["reason"] == "corrected" and int(facts["replacedBy"]) > 0


def test_a_look_alike_is_never_valid_and_its_website_disowns_it(world: World) -> None:
    report = json.loads(_verify(world.cases["look-alike course"].token_id, "--json").output)
    issuer = next(s for s in report["steps"] if s["name"] == "issuer")
    assert issuer["facts"]["issuer"] == world.stranger
    assert issuer["facts"]["providerName"] == "Verified Academy"
    assert issuer["facts"]["verified"] is False
    assert issuer["facts"]["domainLink"] == "failed"
    assert report["verdict"] == "unverified_issuer"


def test_offline_the_domain_link_is_not_checked(world: World) -> None:
    report = json.loads(_verify(world.cases["valid"].token_id, "--json", "--offline").output)
    issuer = next(s for s in report["steps"] if s["name"] == "issuer")
    assert issuer["facts"]["domainLink"] == "not_checked"
    assert report["verdict"] == "valid"


def test_a_token_id_that_is_not_a_number_is_a_usage_error(world: World) -> None:
    result = _verify("12abc")
    assert result.exit_code == 2
    assert "is not a token id" in result.output


# ---------------------------------------------------------------------- the API


@pytest.fixture
def client(world: World, deployments: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = get_settings().model_copy(
        update={
            "database_url": SecretStr(f"sqlite:///{tmp_path / 'api.db'}"),
            "auth_rate_limit": 1000,
        }
    )
    app = create_app(
        settings,
        deployment=load_deployment(deployments / "verify-test.json"),
        rate_limiter=MemoryRateLimiter(1000),
        seed=False,
    )
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def _api(client: httpx.Client, world: World, name: str) -> httpx.Response:
    case = world.cases[name]
    url = f"/api/v1/certificates/{case.token_id}/verification"
    params = {"contract": case.contract}
    if case.document is None:
        return client.get(url, params=params)
    return client.post(url, params=params, json={"record": json.loads(case.document)})


@pytest.mark.parametrize("name", CASES)
def test_the_api_answers_what_the_command_line_answers(
    world: World, client: httpx.Client, name: str, tmp_path: Path
) -> None:
    cli = json.loads(CliRunner().invoke(app, ["verify", *_case_args(world, name, tmp_path)]).output)
    reply = _api(client, world, name)
    assert reply.status_code == 200, reply.text
    assert reply.json() == cli
    assert reply.json()["verdict"] == world.cases[name].verdict


def test_answers_are_cached_seconds_and_documents_never(world: World, client: httpx.Client) -> None:
    assert _api(client, world, "revoked").headers["cache-control"] == "public, max-age=5"
    assert _api(client, world, "valid").headers["cache-control"] == "no-store"


def test_the_default_contract_is_ours(world: World, client: httpx.Client) -> None:
    case = world.cases["revoked"]
    reply = client.get(f"/api/v1/certificates/{case.token_id}/verification")
    assert reply.json()["verdict"] == "revoked" and reply.json()["contract"] == case.contract


@pytest.mark.parametrize(
    "token_id", ["12abc", "-1", str(2**256), "1" * 79], ids=["letters", "negative", "2^256", "long"]
)
def test_malformed_token_ids_are_422(client: httpx.Client, token_id: str) -> None:
    reply = client.get(f"/api/v1/certificates/{token_id}/verification")
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "validation_error"


def test_verifications_are_rate_limited_per_client(world: World, client: httpx.Client) -> None:
    client.app.state.services.rate_limiter = MemoryRateLimiter(2)  # type: ignore[attr-defined]
    codes = [_api(client, world, "revoked").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_an_unreachable_chain_is_503(world: World, client: httpx.Client) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    services.settings = services.settings.model_copy(
        update={"rpc_url": f"http://127.0.0.1:{free_port()}"}
    )
    reply = client.get(f"/api/v1/certificates/{world.cases['valid'].token_id}/verification")
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "chain_unavailable"


# ------------------------------------------------------------------ several chains


@pytest.fixture(scope="module")
def second_chain(deployments: Path) -> Iterator[str]:
    """Another chain (31338) with Tuition deployed and no certificate issued: network
    "verify-b", its deployment next to the first chain's."""
    port = free_port()
    proc = subprocess.Popen(
        [str(anvil_path()), "--port", str(port), "--hardfork", "cancun", "--chain-id", "31338"],
        stdout=subprocess.DEVNULL,
    )
    rpc = f"http://127.0.0.1:{port}"
    try:
        wait_until(Web3(HTTPProvider(rpc)).is_connected, 30, "anvil")
        deploy_all(
            rpc_url=rpc,
            network="verify-b",
            deployments_dir=deployments,
            admin_key=DEMO_KEYS["admin"],
            operator_key=DEMO_KEYS["operator"],
            demo=False,
        )
        yield rpc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_verify_looks_on_every_configured_chain_and_says_where_it_found_it(
    world: World, second_chain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    networks = [  # the chain without the certificate first: it is searched first
        {"name": "verify-b", "chain_id": 31338, "rpc_url": second_chain},
        {"name": "verify-test", "chain_id": 31337, "rpc_url": os.environ["TUITION_RPC_URL"]},
    ]
    monkeypatch.setenv("TUITION_NETWORKS", json.dumps(networks))
    monkeypatch.setenv("TUITION_NETWORK", "verify-b")
    monkeypatch.delenv("TUITION_RPC_URL")
    get_settings.cache_clear()
    token = str(world.cases["valid"].token_id)
    runner = CliRunner()
    try:
        anywhere = runner.invoke(app, ["verify", token, "--offline"])
        anywhere_json = json.loads(runner.invoke(app, ["verify", token, "--json"]).output)
        on_b = runner.invoke(app, ["verify", token, "--chain", "verify-b", "--json"])
        by_id = json.loads(
            runner.invoke(app, ["verify", token, "--chain", "31337", "--json"]).output
        )
        unknown = runner.invoke(app, ["verify", token, "--chain", "base"])
        nowhere = runner.invoke(app, ["verify", "12345", "--offline"])
    finally:
        get_settings.cache_clear()

    assert "searched chains 31338, 31337: found on chain 31337 (verify-test)" in anywhere.output
    assert (anywhere_json["chainId"], anywhere_json["searchedChains"]) == (31337, [31338, 31337])
    assert anywhere_json["verdict"] == world.cases["valid"].verdict
    assert on_b.exit_code == 1
    assert json.loads(on_b.output)["steps"][0]["status"] == "failed"
    assert (by_id["chainId"], by_id["searchedChains"]) == (31337, [31337])
    assert unknown.exit_code == 2 and "unknown chain 'base'" in unknown.output
    assert nowhere.exit_code == 1
    assert "no certificate 12345 on any configured chain: verify-b (31338), verify-test" in (
        nowhere.output
    )


def test_the_api_searches_every_configured_chain_unless_given_one(
    world: World, second_chain: str, deployments: Path, tmp_path: Path
) -> None:
    import os

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        deployments_dir=deployments,
        network="verify-b",
        rpc_url=second_chain,  # the environment's TUITION_RPC_URL is the other chain's
        networks=[
            {"name": "verify-b", "chain_id": 31338, "rpc_url": second_chain},
            {"name": "verify-test", "chain_id": 31337, "rpc_url": os.environ["TUITION_RPC_URL"]},
        ],
        domain_link=False,
    )
    app = create_app(settings, rate_limiter=MemoryRateLimiter(1000), seed=False)
    url = f"/api/v1/certificates/{world.cases['valid'].token_id}/verification"
    with TestClient(app, base_url="http://testserver") as api:
        anywhere = api.get(url).json()
        on_b = api.get(url, params={"chainId": 31338}).json()
        unknown = api.get(url, params={"chainId": 1})
    assert (anywhere["chainId"], anywhere["searchedChains"]) == (31337, [31338, 31337])
    assert anywhere["steps"][0]["status"] == "passed"
    assert (on_b["chainId"], on_b["searchedChains"]) == (31338, [31338])
    assert on_b["steps"][0]["status"] == "failed"
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_chain"
