"""The one reader of deployments/<network>.json: fields, ABIs, errors, the API's lenient view."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from backend.chain.deployment import (
    ContractNotDeployedError,
    Deployment,
    DeploymentNotFoundError,
    InvalidDeploymentError,
    current_deployment,
    deployment_or_empty,
    load_deployment,
)

MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CERTIFICATE = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
EVENT = {"type": "event", "name": "Paused", "inputs": [], "anonymous": False}


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def deployment_data(**contracts: Any) -> dict[str, Any]:
    return {
        "chainId": 31337,
        "network": "local",
        "deployBlock": 7,
        "contracts": {"CourseMarket": {"address": MARKET.lower()}, **contracts},
    }


def test_every_field_the_api_indexer_and_worker_read(tmp_path: Path) -> None:
    abi_file = write(tmp_path / "cert.json", {"abi": [EVENT]})  # an artifact, not a bare list
    data = deployment_data(
        CourseCertificate={"address": CERTIFICATE, "abi": str(abi_file)},
        USDC={"address": "0x" + "22" * 20, "symbol": "USDC", "decimals": 6},
    )
    data["contracts"]["CourseMarket"]["abi"] = [EVENT]
    path = write(tmp_path / "local.json", data)

    deployment = load_deployment(path)

    assert (deployment.chain_id, deployment.network, deployment.deploy_block) == (31337, "local", 7)
    assert (deployment.market, deployment.certificate) == (MARKET, CERTIFICATE)
    assert deployment.addresses == [MARKET, CERTIFICATE]
    assert deployment.path == path
    assert [(t.symbol, t.decimals, t.name) for t in deployment.tokens] == [("USDC", 6, "USDC")]
    assert deployment.contract("CourseMarket").load_abi() == [EVENT]
    assert deployment.contract("CourseCertificate").load_abi() == [EVENT]
    assert deployment.contract("USDC").load_abi() is None
    with pytest.raises(ContractNotDeployedError, match="Nope is not in"):
        deployment.contract("Nope")


def test_relative_abi_paths_are_under_the_project_root(tmp_path: Path) -> None:
    path = write(
        tmp_path / "local.json",
        deployment_data(
            CourseCertificate={"address": CERTIFICATE, "abi": "backend/chain/abi/Missing.json"}
        ),
    )
    data = json.loads(path.read_text())
    data["contracts"]["CourseMarket"]["abi"] = "backend/chain/abi/CourseMarket.json"
    write(path, data)
    deployment = load_deployment(path)
    market_abi = deployment.contract("CourseMarket").load_abi()
    assert market_abi and any(e.get("name") == "CoursePurchased" for e in market_abi)
    # Named but absent: no ABI (callers fall back to artifacts or the built-in events).
    assert deployment.contract("CourseCertificate").load_abi() is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ({"contracts": {"CourseMarket": {"address": MARKET}}}, "chainId must be"),
        ({"chainId": "1", "contracts": {"CourseMarket": {"address": MARKET}}}, "chainId must be"),
        ({"chainId": 1, "contracts": {}}, "no CourseMarket"),
        ({"chainId": 1, "contracts": {"CourseMarket": {}}}, "CourseMarket has no address"),
        ({"chainId": 1, "contracts": {"CourseMarket": {"address": "0x12"}}}, "CourseMarket:"),
        (deployment_data(T={"address": MARKET, "decimals": "x"}), "invalid literal"),
    ],
)
def test_an_unusable_file_is_a_clear_invalid_deployment_error(
    tmp_path: Path, content: Any, message: str
) -> None:
    path = write(tmp_path / "local.json", content)
    with pytest.raises(InvalidDeploymentError, match=message) as caught:
        load_deployment(path)
    assert str(path) in str(caught.value)
    assert deployment_or_empty(path) == Deployment()


def test_a_missing_file_says_to_deploy(tmp_path: Path) -> None:
    with pytest.raises(DeploymentNotFoundError, match="run `tuition deploy`"):
        load_deployment(tmp_path / "nowhere.json")
    assert deployment_or_empty(tmp_path / "nowhere.json") == Deployment()
    assert current_deployment(tmp_path / "nowhere.json") == Deployment()


def test_a_malformed_abi_file_is_an_invalid_deployment(tmp_path: Path) -> None:
    abi_file = write(tmp_path / "abi.json", {"not": "an abi"})
    path = write(tmp_path / "local.json", deployment_data())
    data = json.loads(path.read_text())
    data["contracts"]["CourseMarket"]["abi"] = str(abi_file)
    write(path, data)
    with pytest.raises(InvalidDeploymentError, match="is not a list"):
        load_deployment(path).contract("CourseMarket").load_abi()


def test_current_deployment_is_read_again_when_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "local.json", deployment_data())
    first = current_deployment(path)
    assert first.certificate is None
    assert current_deployment(path) is first  # cached while unchanged
    data = json.loads(path.read_text())
    data["contracts"]["CourseCertificate"] = {"address": CERTIFICATE}
    write(path, data)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert current_deployment(path).certificate == CERTIFICATE
