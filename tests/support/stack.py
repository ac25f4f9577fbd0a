"""Helpers of the end-to-end suite: the chain as a wallet sees it, API users signed in with SIWE,
and polling with a clear failure message."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract

from backend.auth.service import SiweMessage  # imported there without abnf's grammar warnings
from backend.chain.artifacts import load_abi
from support.signing import PERMIT_TYPES

T = TypeVar("T")

NATIVE = "0x0000000000000000000000000000000000000000"

# Runs an end-to-end test on each local chain: its `chain` fixture (and with it `catalog`,
# `learner`, `buyer`, `recipient`) becomes that chain's.
BOTH_CHAINS = pytest.mark.parametrize("chain", ["first", "second"], indirect=True)


@dataclass
class E2EStack:
    """What the tests need of the running stack (started by conftest.py)."""

    api_url: str
    rpc_url: str
    stripe_url: str
    database_url: str
    state_dir: Path
    deployment: dict[str, Any]
    # Every local chain, "first" (the API's network) and "second": (RPC URL, deployment file).
    chains: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def logs(self, lines: int = 30) -> str:
        """The tail of every service's log (for failure messages)."""
        out = []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


# ------------------------------------------------------------------ chain


@dataclass
class Chain:
    """The local anvil and the deployed contracts, used the way a wallet would."""

    rpc_url: str
    deployment: dict[str, Any]
    w3: Web3 = field(init=False)

    def __post_init__(self) -> None:
        self.w3 = Web3(HTTPProvider(self.rpc_url, request_kwargs={"timeout": 30}))

    def address(self, name: str) -> ChecksumAddress:
        return Web3.to_checksum_address(self.deployment["contracts"][name]["address"])

    @property
    def market(self) -> Contract:
        return self.w3.eth.contract(
            address=self.address("CourseMarket"), abi=load_abi("CourseMarket")
        )

    @property
    def certificate(self) -> Contract:
        return self.w3.eth.contract(
            address=self.address("CourseCertificate"), abi=load_abi("CourseCertificate")
        )

    def token(self, symbol: str) -> Contract:
        return self.w3.eth.contract(address=self.address(symbol), abi=load_abi("TestToken"))

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def new_account(self, eth: int = 10) -> LocalAccount:
        """A fresh key holding `eth` ether (set on the node: no transaction, no shared nonce)."""
        account: LocalAccount = Account.from_key("0x" + secrets.token_hex(32))
        self.w3.provider.make_request(
            "anvil_setBalance",  # type: ignore[arg-type]
            [account.address, hex(eth * 10**18)],
        )
        return account

    def send(self, account: LocalAccount, to: str, data: str, value: int = 0) -> dict[str, Any]:
        """Sign and send a transaction from `account`; return its receipt (must succeed)."""
        tx: dict[str, Any] = {
            "from": account.address,
            "to": Web3.to_checksum_address(to),
            "data": data,
            "value": value,
            "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
        }
        tx["gas"] = self.w3.eth.estimate_gas(tx) * 12 // 10  # type: ignore[arg-type]
        base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
        tx["maxPriorityFeePerGas"] = 10**9
        tx["maxFeePerGas"] = base * 2 + 10**9
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
        assert receipt["status"] == 1, f"transaction {tx_hash.hex()} to {to} reverted"
        return dict(receipt)

    def call(self, account: LocalAccount, fn: Any, value: int = 0) -> dict[str, Any]:
        """Send a contract function call (a web3 ContractFunction) from `account`."""
        data = fn._encode_transaction_data()
        return self.send(account, fn.address, data, value)

    def sign_permit(
        self, account: LocalAccount, token: Contract, spender: str, value: int, deadline: int
    ) -> tuple[int, bytes, bytes]:
        """An EIP-2612 permit signature of OpenZeppelin's ERC20Permit, as (v, r, s)."""
        domain = {
            "name": token.functions.name().call(),
            "version": "1",
            "chainId": self.chain_id,
            "verifyingContract": token.address,
        }
        message = {
            "owner": account.address,
            "spender": spender,
            "value": value,
            "nonce": token.functions.nonces(account.address).call(),
            "deadline": deadline,
        }
        signed = Account.sign_typed_data(account.key, domain, PERMIT_TYPES, message)
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])


def record_hash(record: dict[str, Any]) -> str:
    """First 28 bytes of keccak256 of the record's canonical JSON (the contract's bytes28).

    Recomputed here from the documented encoding (sorted keys, no whitespace, UTF-8), not with
    the backend's helper, so a drift between the API's record and its hash would show.
    """
    canonical = json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
    return "0x" + keccak(canonical)[:28].hex()


# ------------------------------------------------------------------ API


class ApiError(AssertionError):
    """An API call answered with an unexpected status."""


@dataclass
class ApiUser:
    """One wallet talking to the API, signed in with SIWE (bearer token)."""

    api_url: str
    account: LocalAccount
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        # The site's own Origin, as the web app sends it (the CSRF check wants it with cookies).
        self.client = httpx.Client(
            base_url=self.api_url, timeout=30, headers={"Origin": self.api_url}
        )

    @property
    def address(self) -> ChecksumAddress:
        return self.account.address

    def sign_in(self) -> ApiUser:
        """EIP-4361 sign-in: nonce from the API, personal_sign, verify; keep the bearer token."""
        nonce = self.request("GET", "/api/v1/auth/nonce")
        message = SiweMessage(
            domain=nonce["domain"],
            address=self.address,
            uri=nonce["uri"],
            version="1",
            chain_id=nonce["chainId"],
            nonce=nonce["nonce"],
            issued_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            statement="Sign in to Tuition.",
        ).prepare_message()
        signature = self.account.sign_message(encode_defunct(text=message)).signature
        session = self.request(
            "POST",
            "/api/v1/auth/verify",
            json={"message": message, "signature": "0x" + signature.hex().removeprefix("0x")},
        )
        assert session["address"] == self.address
        self.client.headers["Authorization"] = f"Bearer {session['token']}"
        return self

    def request(self, method: str, path: str, *, expect: int | tuple[int, ...] = (200, 201),
                **kwargs: Any) -> Any:  # fmt: skip
        """Call the API and return the JSON body; fail with the body on another status."""
        expected = (expect,) if isinstance(expect, int) else expect
        reply = self.client.request(method, path, **kwargs)
        if reply.status_code not in expected:
            raise ApiError(f"{method} {path} -> {reply.status_code}: {reply.text}")
        return reply.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body if body is not None else {}, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=body, **kwargs)

    # ---------------------------------------------------------------- what the tests observe

    def access(self, course_id: int, address: str | None = None) -> dict[str, Any]:
        """GET /courses/{id}/access for `address` (default: this user)."""
        result: dict[str, Any] = self.get(
            f"/api/v1/courses/{course_id}/access", params={"address": address or self.address}
        )
        return result

    def order(self, order_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/api/v1/orders/{order_id}")
        return result

    def certificates(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/me/certificates")
        return result

    def close(self) -> None:
        self.client.close()
