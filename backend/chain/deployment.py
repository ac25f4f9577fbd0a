"""`deployments/<network>.json` (written by `tuition deploy`), read the same way by every process.

The API, the indexer and the worker all go through `load_deployment`; the API, which serves before
anything is deployed, uses `deployment_or_empty` / `current_deployment` instead.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.core.config import PROJECT_ROOT
from backend.core.errors import ServiceUnavailableError
from backend.core.security import InvalidAddressError, checksum_address

logger = logging.getLogger(__name__)

MARKET = "CourseMarket"
CERTIFICATE = "CourseCertificate"


class DeploymentError(Exception):
    """The deployment file cannot be used."""


class DeploymentNotFoundError(DeploymentError):
    """There is no deployment file (nothing deployed on this network yet)."""


class InvalidDeploymentError(DeploymentError):
    """The deployment file is unreadable or does not describe a usable deployment."""


class ContractNotDeployedError(DeploymentError):
    """The deployment does not name the contract asked for."""


@dataclass(frozen=True)
class TokenInfo:
    """An ERC-20 the deployment knows about."""

    address: str
    symbol: str
    decimals: int
    name: str


@dataclass(frozen=True)
class ContractInfo:
    """One contract the deployment names, with where its ABI is."""

    name: str
    address: str  # checksummed
    abi: tuple[dict[str, Any], ...] | None = None  # given inline in the file
    abi_file: Path | None = None  # given as a path (relative ones are under the project root)

    def load_abi(self) -> list[dict[str, Any]] | None:
        """The ABI the deployment gives: inline, else from its file; None when it gives none.

        A file that is named but absent also gives None, so callers can fall back to the
        committed artifacts or to the built-in event list.
        """
        if self.abi is not None:
            return list(self.abi)
        if self.abi_file is None or not self.abi_file.is_file():
            return None
        try:
            data = json.loads(self.abi_file.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidDeploymentError(f"ABI of {self.name} ({self.abi_file}): {exc}") from exc
        if isinstance(data, dict):  # a build artifact: {"abi": [...], ...}
            data = data.get("abi")
        if not isinstance(data, list):
            raise InvalidDeploymentError(f"ABI of {self.name} ({self.abi_file}) is not a list")
        return data


@dataclass(frozen=True)
class Deployment:
    """The contracts of one network; the default one (chain id 0, no market) is "not deployed"."""

    chain_id: int = 0  # no chain has id 0 (EIP-155)
    market: str | None = None
    certificate: str | None = None
    tokens: tuple[TokenInfo, ...] = ()
    network: str = "unknown"
    deploy_block: int = 0
    # Every entry of the file's "contracts", market and certificate included.
    contracts: tuple[ContractInfo, ...] = ()
    path: Path | None = None

    @property
    def addresses(self) -> list[str]:
        """The market and certificate addresses (the contracts whose events matter)."""
        return [a for a in (self.market, self.certificate) if a]

    def require_certificate(self) -> str:
        """The CourseCertificate address, or 503 when no deployment is configured.

        Raises:
            ServiceUnavailableError: no certificate contract on this network.
        """
        if self.certificate is None:
            raise ServiceUnavailableError(
                "the certificate contract is not deployed on this network",
                code="chain_not_configured",
            )
        return self.certificate

    def require_market(self) -> str:
        """The CourseMarket address, or 503 when no deployment is configured.

        Raises:
            ServiceUnavailableError: no market on this network (code `chain_not_configured`).
        """
        if self.market is None:
            raise ServiceUnavailableError(
                "the marketplace contract is not deployed on this network",
                code="chain_not_configured",
            )
        return self.market

    def contract(self, name: str) -> ContractInfo:
        """The contract `name` ("CourseMarket", "CourseCertificate", a token symbol...)."""
        for info in self.contracts:
            if info.name == name:
                return info
        where = self.path or "the deployment"
        raise ContractNotDeployedError(f"{name} is not in {where}")


def load_deployment(path: Path) -> Deployment:
    """Read a deployment file.

    Raises:
        DeploymentNotFoundError: there is no file at `path`.
        InvalidDeploymentError: the file is not JSON, or lacks the chain id or the market, or an
            address or number in it is malformed.
    """
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise DeploymentNotFoundError(
            f"no deployment file at {path}: run `tuition deploy` first"
        ) from exc
    except OSError as exc:
        raise InvalidDeploymentError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidDeploymentError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidDeploymentError(f"{path}: expected a JSON object")
    try:
        return _parse(data, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidDeploymentError(f"{path}: {exc}") from exc


def _parse(data: dict[str, Any], path: Path) -> Deployment:
    chain_id = data.get("chainId")
    if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
        raise ValueError(f"chainId must be a positive integer, not {chain_id!r}")
    entries = data.get("contracts")
    if not isinstance(entries, dict) or MARKET not in entries:
        raise ValueError(f"no {MARKET} in contracts")
    contracts: list[ContractInfo] = []
    tokens: list[TokenInfo] = []
    for key, info in entries.items():
        contract = _contract(key, info)
        contracts.append(contract)
        # Anything else with decimals is an ERC-20 (the deploy script's test tokens).
        if key not in (MARKET, CERTIFICATE) and "decimals" in info:
            tokens.append(
                TokenInfo(
                    address=contract.address,
                    symbol=str(info.get("symbol") or key),
                    decimals=int(info["decimals"]),
                    name=str(info.get("name") or key),
                )
            )
    by_name = {c.name: c.address for c in contracts}
    return Deployment(
        chain_id=chain_id,
        market=by_name[MARKET],
        certificate=by_name.get(CERTIFICATE),
        tokens=tuple(tokens),
        network=str(data.get("network") or "unknown"),
        deploy_block=int(data.get("deployBlock", 0)),
        contracts=tuple(contracts),
        path=path,
    )


def _contract(name: str, info: Any) -> ContractInfo:
    if not isinstance(info, dict):
        raise ValueError(f"contracts.{name} must be an object")
    try:
        address = checksum_address(str(info["address"]))
    except KeyError as exc:
        raise ValueError(f"contracts.{name} has no address") from exc
    except InvalidAddressError as exc:
        raise ValueError(f"contracts.{name}: {exc}") from exc
    abi = info.get("abi")
    if isinstance(abi, list):
        return ContractInfo(name, address, abi=tuple(abi))
    if isinstance(abi, str) and abi:
        return ContractInfo(name, address, abi_file=PROJECT_ROOT / abi)
    return ContractInfo(name, address)


def deployment_or_empty(path: Path) -> Deployment:
    """`load_deployment`, or the empty `Deployment()` when there is none or it is unusable.

    For the API, which serves (without chain features) before `tuition deploy` has run.
    """
    try:
        return load_deployment(path)
    except DeploymentNotFoundError:
        return Deployment()
    except DeploymentError as exc:
        logger.warning("ignoring the deployment: %s", exc)
        return Deployment()


_cache: dict[Path, tuple[float, Deployment]] = {}


def current_deployment(path: Path) -> Deployment:
    """`deployment_or_empty`, re-read only when the file's modification time changed."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return Deployment()
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    deployment = deployment_or_empty(path)
    if deployment.chain_id:  # an unusable file is read again next time
        _cache[path] = (mtime, deployment)
    return deployment
