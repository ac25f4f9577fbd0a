"""`--network`: `tuition deploy` and `tuition indexer` work on one of the configured chains."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.anvil import Anvil
from typer.testing import CliRunner

from backend.cli import app
from backend.core.config import get_settings


@pytest.fixture(scope="module")
def chains() -> Iterator[tuple[Anvil, Anvil]]:
    """Two local chains, as `tuition up` runs them."""
    a, b = Anvil(chain_id=31337), Anvil(chain_id=31338)
    yield a, b
    for node in (a, b):
        node.close()


@pytest.fixture
def networks(
    chains: tuple[Anvil, Anvil], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    a, b = chains
    monkeypatch.setenv(
        "TUITION_NETWORKS",
        json.dumps(
            [
                {"name": "chain-a", "chain_id": 31337, "rpc_url": a.url},
                {"name": "chain-b", "chain_id": 31338, "rpc_url": b.url},
                # Misconfigured: claims chain 5 but its RPC is chain A's node.
                {"name": "liar", "chain_id": 5, "rpc_url": a.url},
            ]
        ),
    )
    monkeypatch.setenv("TUITION_DEPLOYMENTS_DIR", str(tmp_path))
    monkeypatch.setenv("TUITION_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    # `--network` sets TUITION_NETWORK for the process: monkeypatch restores it afterwards.
    monkeypatch.setenv("TUITION_NETWORK", "chain-a")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_deploy_writes_each_networks_own_deployment_file(networks: Path) -> None:
    runner = CliRunner()

    b = runner.invoke(app, ["deploy", "--network", "chain-b", "--no-demo"])
    a = runner.invoke(app, ["deploy", "--network", "chain-a", "--no-demo"])

    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    files = {p.stem: json.loads(p.read_text()) for p in networks.glob("*.json")}
    assert {name: f["chainId"] for name, f in files.items()} == {
        "chain-a": 31337,
        "chain-b": 31338,
    }
    assert files["chain-a"]["network"] == "chain-a"


def test_deploy_refuses_a_node_serving_another_chain(networks: Path) -> None:
    result = CliRunner().invoke(app, ["deploy", "--network", "liar", "--no-demo"])

    assert result.exit_code == 2
    assert "serves chain 31337, network liar is chain 5" in result.output
    assert not (networks / "liar.json").exists()


@pytest.mark.parametrize("command", ["deploy", "indexer"])
def test_unknown_network_is_refused_before_any_work(networks: Path, command: str) -> None:
    result = CliRunner().invoke(app, [command, "--network", "base"])

    assert result.exit_code == 2
    assert "unknown network 'base': configured are chain-a, chain-b, liar" in result.output
    assert list(networks.glob("*.json")) == []
