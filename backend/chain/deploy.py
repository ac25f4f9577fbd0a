"""Deploy the contracts from the committed artifacts (no compiler needed) and write
`deployments/<network>.json`, which the API, the indexer and the worker read.

Idempotent: when the deployment file names contracts that still have code on the same chain,
they are reused and nothing is sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3
from web3.contract import Contract

from backend.chain.artifacts import abi_path, load_abi, load_bytecode
from backend.chain.tx import profile_hash
from backend.core.config import Settings, get_settings
from backend.core.dev_accounts import DEMO_KEYS
from backend.core.security import NATIVE_TOKEN


class WrongChainError(RuntimeError):
    """The node answers for another chain than the network being deployed to."""


DEFAULT_FEE_BPS = 500  # 5 %
ADMIN_DELAY = 3 * 24 * 3600  # two-step admin transfer waits three days

DEMO_COURSES: list[dict[str, Any]] = [
    {
        "title": "Solidity from Zero",
        "refund_window": 14 * 24 * 3600,
        "prices": {"ETH": "0.01", "ESN": "25", "USDC": "49"},
    },
    {
        "title": "Zero-Knowledge Proofs in Practice",
        "refund_window": 14 * 24 * 3600,
        "prices": {"ETH": "0.02", "ESN": "60", "USDC": "99"},
    },
    {
        "title": "Designing Token Economies",
        "refund_window": 7 * 24 * 3600,
        "prices": {"ESN": "15", "USDC": "29"},
    },
    {
        "title": "Smart Contract Security Review",
        "refund_window": 30 * 24 * 3600,
        "prices": {"ETH": "0.05", "USDC": "199"},
    },
    {
        "title": "Ethereum for Everyone",
        "refund_window": 0,
        "prices": {"ETH": "0"},
    },
]
# The demo provider's public record (name, website domain).
DEMO_PROVIDER_PROFILE = ("Tuition Demo Academy", "academy.tuition.example")
TOKENS = {"ESN": ("Esn Token", "ESN", 18), "USDC": ("USD Coin", "USDC", 6)}


def _to_units(amount: str, decimals: int) -> int:
    whole, _, frac = amount.partition(".")
    if len(frac) > decimals:
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(whole) * 10**decimals + int(frac.ljust(decimals, "0") or 0)


class Deployer:
    """Sends deployment transactions from one key and waits for each receipt."""

    def __init__(self, w3: Web3, key: str) -> None:
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(key)

    def send(self, fn: Any, sender: LocalAccount | None = None) -> Any:
        account = sender or self.account
        tx = fn.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": self.w3.eth.chain_id,
            }
        )
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def deploy(self, name: str, *args: Any) -> tuple[Contract, int]:
        factory = self.w3.eth.contract(abi=load_abi(name), bytecode=load_bytecode(name))
        receipt = self.send(factory.constructor(*args))
        address = receipt["contractAddress"]
        return self.w3.eth.contract(address=address, abi=load_abi(name)), receipt["blockNumber"]


def _existing(w3: Web3, path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    if data.get("chainId") != w3.eth.chain_id:
        return None
    genesis = w3.eth.get_block(0)["hash"].to_0x_hex()
    if data.get("genesisHash") not in (None, genesis):
        return None
    for info in data["contracts"].values():
        if not w3.eth.get_code(Web3.to_checksum_address(info["address"])):
            return None
    return data


def deploy_all(
    *,
    rpc_url: str,
    network: str,
    deployments_dir: Path,
    admin_key: str,
    operator_key: str,
    provider_key: str | None = None,
    learner_keys: list[str] | None = None,
    demo: bool = True,
    fee_bps: int = DEFAULT_FEE_BPS,
    chain_id: int | None = None,
) -> dict[str, Any]:
    """Deploy market, certificates and test tokens (or reuse them); returns the file's data.

    Raises:
        WrongChainError: `chain_id` is given and the node at `rpc_url` serves another chain.
    """
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    if chain_id is not None and (node_chain := w3.eth.chain_id) != chain_id:
        raise WrongChainError(
            f"the node at {rpc_url} serves chain {node_chain}, network {network} is chain "
            f"{chain_id}: nothing deployed"
        )
    path = deployments_dir / f"{network}.json"
    existing = _existing(w3, path)
    if existing is not None:
        return existing

    deployer = Deployer(w3, admin_key)
    admin = deployer.account.address
    operator = Account.from_key(operator_key).address
    start_block = w3.eth.block_number + 1

    market, _ = deployer.deploy("CourseMarket", admin, admin, fee_bps, ADMIN_DELAY)
    certificate, _ = deployer.deploy("CourseCertificate", admin, market.address)
    tokens = {
        symbol: deployer.deploy("TestToken", name, sym, decimals)[0]
        for symbol, (name, sym, decimals) in TOKENS.items()
    }
    deployer.send(market.functions.grantRole(market.functions.OPERATOR_ROLE().call(), operator))
    deployer.send(market.functions.grantRole(market.functions.GUARDIAN_ROLE().call(), admin))
    # The backend's key issues certificates and records the platform's provider verifications.
    for role in (certificate.functions.ISSUER_ROLE(), certificate.functions.VERIFIER_ROLE()):
        deployer.send(certificate.functions.grantRole(role.call(), operator))
    for token in tokens.values():
        deployer.send(market.functions.setTokenAllowed(token.address, True))

    data: dict[str, Any] = {
        "chainId": w3.eth.chain_id,
        "network": network,
        "genesisHash": w3.eth.get_block(0)["hash"].to_0x_hex(),
        "deployBlock": start_block,
        "contracts": {
            "CourseMarket": {"address": market.address, "abi": abi_path("CourseMarket")},
            "CourseCertificate": {
                "address": certificate.address,
                "abi": abi_path("CourseCertificate"),
            },
            **{
                symbol: {
                    "address": token.address,
                    "abi": abi_path("TestToken"),
                    "symbol": symbol,
                    "decimals": TOKENS[symbol][2],
                }
                for symbol, token in tokens.items()
            },
        },
        "roles": {"admin": admin, "operator": operator, "treasury": admin},
    }
    if demo and provider_key:
        data["demo"] = _seed_demo(
            deployer, market, certificate, tokens, provider_key, operator_key, learner_keys or []
        )

    deployments_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return data


def _seed_demo(
    deployer: Deployer,
    market: Contract,
    certificate: Contract,
    tokens: dict[str, Contract],
    provider_key: str,
    operator_key: str,
    learner_keys: list[str],
) -> dict[str, Any]:
    provider = Account.from_key(provider_key)
    # The demo provider's public record, verified by the platform (the operator holds
    # VERIFIER_ROLE), so the demo's certificates verify as VALID.
    name, domain = DEMO_PROVIDER_PROFILE
    deployer.send(certificate.functions.setProviderProfile(name, domain), provider)
    reviewed = bytes.fromhex(profile_hash(name, domain)[2:])
    deployer.send(
        certificate.functions.verifyProvider(provider.address, reviewed),
        Account.from_key(operator_key),
    )
    course_ids = []
    for course in DEMO_COURSES:
        receipt = deployer.send(
            market.functions.createCourse(course["title"], course["refund_window"]), provider
        )
        event = market.events.CourseCreated().process_receipt(receipt)[0]
        course_id = event["args"]["courseId"]
        course_ids.append(course_id)
        for symbol, amount in course["prices"].items():
            if symbol == "ETH":
                token_address, decimals = NATIVE_TOKEN, 18
            else:
                token_address, decimals = tokens[symbol].address, TOKENS[symbol][2]
            price = _to_units(amount, decimals)
            deployer.send(market.functions.setPrice(course_id, token_address, price), provider)
    learners = [Account.from_key(key).address for key in learner_keys]
    for learner in learners:
        for symbol, token in tokens.items():
            amount = 10_000 * 10 ** TOKENS[symbol][2]
            deployer.send(token.functions.mint(learner, amount))
    return {"provider": provider.address, "learners": learners, "courses": course_ids}


def deploy_demo(
    *,
    rpc_url: str,
    network: str,
    deployments_dir: Path,
    demo: bool = True,
    admin_key: str = DEMO_KEYS["admin"],
    operator_key: str = DEMO_KEYS["operator"],
    chain_id: int | None = None,
) -> dict[str, Any]:
    """`deploy_all` with the dev accounts' roles: anvil's admin and operator keys by default,
    and with `demo` the demo provider's catalog and two funded demo learners."""
    return deploy_all(
        rpc_url=rpc_url,
        network=network,
        deployments_dir=deployments_dir,
        admin_key=admin_key,
        operator_key=operator_key,
        provider_key=DEMO_KEYS["provider"] if demo else None,
        learner_keys=[DEMO_KEYS["learner"], DEMO_KEYS["learner2"]] if demo else None,
        demo=demo,
        chain_id=chain_id,
    )


def deploy_from_settings(settings: Settings | None = None, demo: bool = True) -> dict[str, Any]:
    """`tuition deploy`: the settings' network, the configured admin and operator keys."""
    settings = settings or get_settings()
    return deploy_demo(
        rpc_url=settings.rpc_url,
        network=settings.network,
        deployments_dir=settings.deployments_dir,
        demo=demo,
        admin_key=settings.deployer_private_key.get_secret_value(),
        operator_key=settings.operator_private_key.get_secret_value(),
        chain_id=settings.chain_id,
    )
