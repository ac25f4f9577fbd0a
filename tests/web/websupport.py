"""Helpers of the browser suite that talk to the chain directly (as an operator would)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from eth_account import Account
from web3 import HTTPProvider, Web3


def rpc(rpc_url: str, method: str, params: list[Any] | None = None) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    reply = httpx.post(rpc_url, json=body, timeout=30).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def fresh_key(rpc_url: str, *, ether: int = 10) -> str:
    """The private key of a new account holding `ether` (no earlier run or test has used it)."""
    account = Account.create()
    rpc(rpc_url, "anvil_setBalance", [account.address, hex(ether * 10**18)])
    return "0x" + bytes(account.key).hex()


def mine(rpc_url: str, blocks: int = 1) -> None:
    rpc(rpc_url, "anvil_mine", [hex(blocks)])


def wait_mining(
    rpc_url: str, check: Callable[[], Any], timeout: float = 90, what: str = "condition"
) -> Any:
    """Poll `check` while the chain moves on (the indexer and worker wait for confirmations)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        mine(rpc_url)
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class Operator:
    """The backend's operator/issuer key acting on the certificate contract."""

    def __init__(self, rpc_url: str, key: str, certificate: str) -> None:
        from backend.chain.artifacts import load_abi

        self.w3 = Web3(HTTPProvider(rpc_url))
        self.account = Account.from_key(key)
        self.certificate = self.w3.eth.contract(
            address=Web3.to_checksum_address(certificate), abi=load_abi("CourseCertificate")
        )

    def _send(self, fn: Any) -> Any:
        tx = fn.build_transaction(
            {
                "from": self.account.address,
                "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            }
        )
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        assert receipt["status"] == 1, f"transaction {tx_hash.hex()} reverted"
        return receipt

    def mint(self, learner: str, course_id: int, record_hash: bytes) -> int:
        self._send(self.certificate.functions.mint(learner, course_id, record_hash))
        return int(self.certificate.functions.tokenIdFor(learner, course_id).call())

    def revoke(self, token_id: int, reason: int) -> None:
        self._send(self.certificate.functions.revoke(token_id, reason))
