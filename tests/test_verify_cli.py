"""`tuition verify`: a verifier checks a certificate from the chain alone."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner
from web3 import HTTPProvider, Web3

from backend.certificates.service import record_hash
from backend.chain.artifacts import load_abi
from backend.chain.deploy import Deployer, deploy_all
from backend.chain.toolchain import anvil_path
from backend.cli import app
from backend.core.dev_accounts import DEMO_KEYS
from backend.devstack import free_port, wait_until

pytestmark = pytest.mark.chain

RECORD = {"name": "Ada", "grade": "A", "date": "2026-11-21", "salt": "9f2c4e"}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    port = free_port()
    proc = subprocess.Popen(
        [str(anvil_path()), "--port", str(port), "--hardfork", "cancun", "--silent"]
    )
    rpc = f"http://127.0.0.1:{port}"
    w3 = Web3(HTTPProvider(rpc))
    try:
        wait_until(w3.is_connected, 30, "anvil")
        data = deploy_all(
            rpc_url=rpc,
            network="verify-test",
            deployments_dir=tmp_path_factory.mktemp("deployments"),
            admin_key=DEMO_KEYS["admin"],
            operator_key=DEMO_KEYS["operator"],
            demo=False,
        )
        market = w3.eth.contract(
            address=data["contracts"]["CourseMarket"]["address"], abi=load_abi("CourseMarket")
        )
        certificate = w3.eth.contract(
            address=data["contracts"]["CourseCertificate"]["address"],
            abi=load_abi("CourseCertificate"),
        )
        deployer = Deployer(w3, DEMO_KEYS["operator"])
        provider = Account.from_key(DEMO_KEYS["provider"])
        deployer.send(market.functions.createCourse("Verified Course", 0), provider)
        learners = [Account.from_key(DEMO_KEYS[k]).address for k in ("learner", "learner2")]
        digest = bytes.fromhex(record_hash(RECORD)[2:])
        for learner in learners:
            # Certificates need access on-chain: the operator records a grant first.
            deployer.send(market.functions.grantAccess(1, learner, 3, b"\x01" * 32))
            deployer.send(certificate.functions.mint(learner, 1, digest))
        revoked_id = certificate.functions.tokenIdFor(learners[1], 1).call()
        deployer.send(certificate.functions.revoke(revoked_id, 1))
        yield {
            "rpc": rpc,
            "certificate": certificate.address,
            "valid_id": certificate.functions.tokenIdFor(learners[0], 1).call(),
            "revoked_id": revoked_id,
            "holder": learners[0],
            "provider": provider.address,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _verify(chain: dict[str, Any], token_id: int, *extra: str) -> Any:
    args = ["verify", str(token_id), "--contract", chain["certificate"], "--rpc-url", chain["rpc"]]
    return CliRunner().invoke(app, [*args, *extra])


def _record_file(tmp_path: Path, record: dict[str, Any]) -> str:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record, indent=2))
    return str(path)


def test_valid_certificate_with_its_record_passes_every_step(
    chain: dict[str, Any], tmp_path: Path
) -> None:
    result = _verify(chain, chain["valid_id"], "--record", _record_file(tmp_path, RECORD))
    assert result.exit_code == 0, result.output
    assert chain["holder"] in result.output
    assert "Verified Course" in result.output
    assert "PASS  integrity" in result.output
    assert result.output.strip().endswith("VALID")


def test_altered_record_fails_the_integrity_step(chain: dict[str, Any], tmp_path: Path) -> None:
    altered = {**RECORD, "grade": "A+"}
    result = _verify(chain, chain["valid_id"], "--record", _record_file(tmp_path, altered))
    assert result.exit_code == 1
    assert "FAIL  integrity" in result.output


def test_revoked_certificate_is_reported_as_revoked_not_missing(chain: dict[str, Any]) -> None:
    result = _verify(chain, chain["revoked_id"], "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["facts"]["revoked"] is True
    assert report["facts"]["issuer"] == chain["provider"]
    steps = {step["name"]: step["ok"] for step in report["steps"]}
    assert steps == {"exists": True, "status": False, "issuer": True}


def test_unknown_token_id_fails_the_exists_step(chain: dict[str, Any]) -> None:
    result = _verify(chain, chain["valid_id"] + 1, "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["steps"] == [
        {"name": "exists", "ok": False, "detail": "no certificate with this token id"}
    ]
