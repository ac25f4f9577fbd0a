"""The deployment the indexer follows: deployments/<network>.json from scripts/deploy.py."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.core.config import PROJECT_ROOT
from indexer.decoding import LogDecoder, load_abi

MARKET = "CourseMarket"
CERTIFICATE = "CourseCertificate"


class DeploymentError(RuntimeError):
    """The deployment file is missing or does not describe what the indexer needs."""


@dataclass(slots=True)
class Deployment:
    """Addresses, deploy block and ABIs of the indexed contracts."""

    chain_id: int
    network: str
    deploy_block: int
    market: str
    certificate: str | None
    abis: list[list[dict[str, Any]]] = field(default_factory=list)
    path: Path | None = None

    @property
    def addresses(self) -> list[str]:
        """The contracts whose logs are indexed."""
        return [a for a in (self.market, self.certificate) if a]

    @property
    def stream(self) -> str:
        """The checkpoint key: a redeployment on the same chain starts a new stream."""
        return f"{self.network}:{self.market.lower()}"

    def decoder(self) -> LogDecoder:
        """A decoder from the compiled ABIs when present, else from the built-in events."""
        return LogDecoder.from_abis(self.abis) if self.abis else LogDecoder.default()


def load_deployment(path: Path, root: Path = PROJECT_ROOT) -> Deployment:
    """Read a deployment file; ABI paths in it are relative to the project root."""
    if not path.is_file():
        raise DeploymentError(f"no deployment file at {path} (run scripts/deploy.py first)")
    data = json.loads(path.read_text())
    contracts = data.get("contracts", {})
    if MARKET not in contracts:
        raise DeploymentError(f"{path}: no {MARKET} in contracts")
    abis: list[list[dict[str, Any]]] = []
    for name in (MARKET, CERTIFICATE):
        entry = contracts.get(name) or {}
        abi = entry.get("abi")
        if isinstance(abi, list):
            abis.append(abi)
        elif isinstance(abi, str):
            abi_path = Path(abi) if Path(abi).is_absolute() else root / abi
            if abi_path.is_file():
                abis.append(load_abi(abi_path))
    cert = (contracts.get(CERTIFICATE) or {}).get("address")
    return Deployment(
        chain_id=int(data["chainId"]),
        network=str(data.get("network", "unknown")),
        deploy_block=int(data.get("deployBlock", 0)),
        market=contracts[MARKET]["address"],
        certificate=cert,
        abis=abis,
        path=path,
    )
