"""Chain helpers of the worker tests: a private anvil, the real contracts, anvil's keys."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from support.anvil import Anvil

ROOT = Path(__file__).resolve().parents[2]

# anvil's default accounts (public test keys of the mnemonic "test test ... junk").
KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",  # 0 admin
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",  # 1 operator/issuer
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",  # 2 provider
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",  # 3
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",  # 4
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",  # 5 nonce tests
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",  # 6 nonce tests
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",  # 7 nonce tests
]
ADMIN, OPERATOR, PROVIDER = (Account.from_key(k) for k in KEYS[:3])
ADMIN_DELAY = 3 * 24 * 3600


def load_artifact(name: str) -> tuple[list[dict[str, Any]], str]:
    """ABI and creation bytecode of `name`: committed artifacts first, else ape's build."""
    abi_file = ROOT / "backend" / "chain" / "abi" / f"{name}.json"
    bin_file = ROOT / "backend" / "chain" / "bytecode" / f"{name}.bin"
    if abi_file.exists() and bin_file.exists():
        return json.loads(abi_file.read_text()), bin_file.read_text().strip()
    build = ROOT / ".build" / "__local__.json"
    if not build.exists():
        pytest.skip("no contract artifacts: commit backend/chain/abi|bytecode or `ape compile`")
    contract = json.loads(build.read_text())["contractTypes"][name]
    return contract["abi"], contract["deploymentBytecode"]["bytecode"]


@dataclass
class Deployed:
    """The contracts of one test session and the deployment file that names them."""

    anvil: Anvil
    market: Contract
    certificate: Contract
    deployments_dir: Path
    courses: list[int] = field(default_factory=list)

    @property
    def w3(self) -> Web3:
        """The node's client."""
        return self.anvil.w3


def transact(w3: Web3, fn: Any, account: LocalAccount, value: int = 0) -> Any:
    """Send `fn` from `account` and wait; raises if it reverted."""
    tx = fn.build_transaction(
        {
            "from": account.address,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "value": value,
        }
    )
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60
    )
    if receipt["status"] != 1:
        raise RuntimeError(f"{fn.fn_name} reverted")
    return receipt


def deploy(anvil: Anvil, directory: Path, n_courses: int = 6, network: str = "local") -> Deployed:
    """Deploy CourseMarket and CourseCertificate, give the operator its roles, create courses;
    the deployment file is `<directory>/<network>.json`."""
    w3 = anvil.w3

    def create(name: str, *args: Any) -> Contract:
        abi, bytecode = load_artifact(name)
        receipt = transact(
            w3, w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args), ADMIN
        )
        return w3.eth.contract(address=receipt["contractAddress"], abi=abi)

    market = create("CourseMarket", ADMIN.address, ADMIN.address, 500, ADMIN_DELAY)
    certificate = create("CourseCertificate", ADMIN.address, market.address)
    # The admin too, so tests can record access on-chain without touching the nonces of the
    # operator key (the worker's sender owns those).
    for account in (OPERATOR, ADMIN):
        transact(
            w3,
            market.functions.grantRole(market.functions.OPERATOR_ROLE().call(), account.address),
            ADMIN,
        )
    # As `deploy_all`: the operator issues certificates and records the platform's verification.
    for role in (certificate.functions.ISSUER_ROLE(), certificate.functions.VERIFIER_ROLE()):
        transact(w3, certificate.functions.grantRole(role.call(), OPERATOR.address), ADMIN)
    courses = []
    for i in range(n_courses):
        receipt = transact(w3, market.functions.createCourse(f"Course {i + 1}", 0), PROVIDER)
        courses.append(
            market.events.CourseCreated().process_receipt(receipt)[0]["args"]["courseId"]
        )

    directory.mkdir(parents=True, exist_ok=True)
    abi_dir = directory / "abi"
    abi_dir.mkdir(exist_ok=True)
    contracts = {}
    for name, contract in (("CourseMarket", market), ("CourseCertificate", certificate)):
        (abi_dir / f"{name}.json").write_text(json.dumps(contract.abi))
        contracts[name] = {"address": contract.address, "abi": str(abi_dir / f"{name}.json")}
    (directory / f"{network}.json").write_text(
        json.dumps(
            {
                "chainId": w3.eth.chain_id,
                "network": network,
                "deployBlock": 0,
                "contracts": contracts,
            }
        )
    )
    return Deployed(anvil, market, certificate, directory, courses)


def new_learner(anvil: Anvil, fund: bool = False) -> LocalAccount:
    """A fresh account (with 10 ETH when it must pay gas)."""
    account: LocalAccount = Account.create()
    if fund:
        anvil.rpc("anvil_setBalance", account.address, hex(10 * 10**18))
    return account
