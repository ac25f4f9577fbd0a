"""The chain as the worker sees it: one Web3 client, the deployed contracts, the operator key."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3Exception

from backend.chain.artifacts import ABI_DIR, CERTIFICATE_FIELDS, load_abi
from backend.chain.deployment import (
    CERTIFICATE,
    MARKET,
    ContractInfo,
    Deployment,
    DeploymentError,
    load_deployment,
)
from backend.core.config import Settings, get_settings
from backend.core.errors import ChainUnavailableError, NotDeployedError, PermanentError

RPC_TIMEOUT = 30  # seconds per JSON-RPC request


def _abi(info: ContractInfo) -> list[dict[str, Any]]:
    abi = info.load_abi()
    if abi is not None:
        return abi
    # The deployment names no (existing) ABI file: the committed artifact of that contract.
    try:
        return load_abi(info.name)
    except FileNotFoundError as exc:
        raise NotDeployedError(f"no ABI for {info.name} in the deployment or {ABI_DIR}") from exc


@dataclass
class Chain:
    """Web3 client, contracts and operator account of the configured network."""

    w3: Web3
    deployment: Deployment
    operator: LocalAccount

    @property
    def chain_id(self) -> int:
        """The deployment's chain id (checked against the node by `check`)."""
        return self.deployment.chain_id

    def contract(self, name: str) -> Contract:
        """The deployed contract `name` ("CourseMarket", "CourseCertificate", ...)."""
        try:
            info = self.deployment.contract(name)
            abi = _abi(info)
        except DeploymentError as exc:
            raise NotDeployedError(str(exc)) from exc
        return self.w3.eth.contract(address=Web3.to_checksum_address(info.address), abi=abi)

    @cached_property
    def market(self) -> Contract:
        """CourseMarket."""
        return self.contract(MARKET)

    @cached_property
    def certificate(self) -> Contract:
        """CourseCertificate."""
        return self.contract(CERTIFICATE)


def make_chain(
    rpc_url: str, deployment: Deployment, operator_key: str, *, timeout: float = RPC_TIMEOUT
) -> Chain:
    """A `Chain` for explicit parameters (tests, scripts)."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    return Chain(w3=w3, deployment=deployment, operator=Account.from_key(operator_key))


_lock = threading.Lock()
_chains: dict[int | None, Chain] = {}


def get_chain(settings: Settings | None = None, chain_id: int | None = None) -> Chain:
    """The process's `Chain` of configured chain `chain_id` (None: TUITION_NETWORK's), from
    that network's settings (its deployment file is read once).

    Raises:
        PermanentError: `chain_id` is not one of TUITION_NETWORKS.
        NotDeployedError: the network has no deployment file yet (retried).
    """
    with _lock:
        if chain_id not in _chains:
            settings = settings or get_settings()
            if chain_id is not None and chain_id != settings.chain_id:
                network = settings.network_by_chain(chain_id)
                if network is None:
                    raise PermanentError(f"chain {chain_id} is not configured (TUITION_NETWORKS)")
                settings = settings.for_network(network.name)
            try:
                deployment = load_deployment(settings.deployment_file)
            except DeploymentError as exc:
                # Retried: `tuition deploy` may still be running, or the file is being fixed.
                raise NotDeployedError(str(exc)) from exc
            chain = make_chain(
                settings.rpc_url, deployment, settings.operator_private_key.get_secret_value()
            )
            _chains[chain_id] = chain
            _chains.setdefault(chain.chain_id, chain)
        return _chains[chain_id]


def configured_chain_ids(settings: Settings | None = None) -> list[int]:
    """Every configured chain, TUITION_NETWORK's first."""
    settings = settings or get_settings()
    others = [n.chain_id for n in settings.networks if n.chain_id != settings.chain_id]
    return [settings.chain_id, *others]


def reset_chain() -> None:
    """Forget the cached chains (tests, or after a redeploy)."""
    with _lock:
        _chains.clear()


def call_view(fn: Any) -> Any:
    """`fn.call()`, with transport failures turned into `ChainUnavailableError` (retried)."""
    try:
        return fn.call()
    except ContractLogicError:
        raise
    except (requests.RequestException, OSError, Web3Exception) as exc:
        raise ChainUnavailableError(f"eth_call failed: {exc}") from exc


def call_rpc(fn: Callable[[], Any]) -> Any:
    """`fn()` (a JSON-RPC read such as `eth_getLogs`), with transport failures turned into
    `ChainUnavailableError` (retried)."""
    try:
        return fn()
    except (requests.RequestException, OSError, Web3Exception) as exc:
        raise ChainUnavailableError(f"JSON-RPC read failed: {exc}") from exc


def certificate_on_chain(chain: Chain, token_id: int) -> dict[str, Any] | None:
    """`verify(tokenId)` as a dict, or None when the certificate was never issued."""
    try:
        cert = call_view(chain.certificate.functions.verify(token_id))
    except ContractLogicError:
        return None  # UnknownCertificate
    return dict(zip(CERTIFICATE_FIELDS, cert, strict=True))


def has_access(chain: Chain, course_id: int, learner: str) -> bool:
    """`CourseMarket.hasAccess`."""
    fn = chain.market.functions.hasAccess(course_id, Web3.to_checksum_address(learner))
    return bool(call_view(fn))


def access_record(chain: Chain, course_id: int, learner: str) -> tuple[int, bytes]:
    """`accessOf(course, learner)`: the `AccessSource` (0 when none) and the 21-byte digest."""
    fn = chain.market.functions.accessOf(course_id, Web3.to_checksum_address(learner))
    source, _granted_at, _refund_deadline, digest = call_view(fn)
    return int(source), bytes(digest)
