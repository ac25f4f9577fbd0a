"""Helpers of the browser suite that talk to the chain directly (as an operator would)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.logs import DISCARD

NATIVE = "0x0000000000000000000000000000000000000000"


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


def increase_time(rpc_url: str, seconds: int) -> None:
    """Move the chain's clock forward and mine a block at the new time."""
    rpc(rpc_url, "evm_increaseTime", [hex(seconds)])
    mine(rpc_url)


def contract(w3: Web3, name: str, address: str) -> Any:
    from backend.chain.artifacts import load_abi

    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_abi(name))


def send(w3: Web3, key: str, fn: Any, *, value: int = 0) -> Any:
    """Sign and send a contract call with `key`; the receipt of a successful transaction."""
    account = Account.from_key(key)
    tx = fn.build_transaction(
        {
            "from": account.address,
            "value": value,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        }
    )
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    assert receipt["status"] == 1, f"transaction {tx_hash.hex()} reverted"
    return receipt


def enlist_issuer(rpc_url: str, admin_key: str, market: str, certificate: str) -> str:
    """A new funded key holding the roles the stack's operator holds (OPERATOR on the market,
    ISSUER and VERIFIER on certificates), granted by the admin.

    Tests that act "as the platform" straight on-chain use it instead of the operator key: the
    stack's worker sends from the operator key at any moment, and two senders reading the same
    pending nonce collide ("replacement transaction underpriced"), more often on a loaded machine.
    """
    key = fresh_key(rpc_url)
    grantee = Account.from_key(key).address
    w3 = Web3(HTTPProvider(rpc_url))
    market_contract = contract(w3, "CourseMarket", market)
    certificate_contract = contract(w3, "CourseCertificate", certificate)
    roles = [
        (market_contract, market_contract.functions.OPERATOR_ROLE().call()),
        (certificate_contract, certificate_contract.functions.ISSUER_ROLE().call()),
        (certificate_contract, certificate_contract.functions.VERIFIER_ROLE().call()),
    ]
    for target, role in roles:
        send(w3, admin_key, target.functions.grantRole(role, grantee))
    return key


class Market:
    """The course market called directly by a provider's or a learner's key."""

    def __init__(self, rpc_url: str, address: str) -> None:
        self.w3 = Web3(HTTPProvider(rpc_url))
        self.market = contract(self.w3, "CourseMarket", address)

    def create_course(self, key: str, title: str, refund_window: int) -> int:
        """Register a course (listed at once) and return its on-chain id."""
        receipt = send(self.w3, key, self.market.functions.createCourse(title, refund_window))
        (created,) = self.market.events.CourseCreated().process_receipt(receipt)
        return int(created["args"]["courseId"])

    def set_price(self, key: str, course_id: int, token: str, price: int) -> None:
        send(self.w3, key, self.market.functions.setPrice(course_id, token, price))

    def buy_with_native(self, key: str, course_id: int, price: int) -> None:
        fn = self.market.functions.purchase(course_id, NATIVE, price, NATIVE, b"\0" * 32, 0)
        send(self.w3, key, fn, value=price)

    def fee_bps(self) -> int:
        return int(self.market.functions.feeBps().call())

    def withdrawable_of(self, payee: str, token: str) -> int:
        return int(self.market.functions.withdrawableOf(payee, token).call())

    def releasable_of(self, provider: str, token: str) -> tuple[int, int]:
        net, fee = self.market.functions.releasableOf(provider, token).call()
        return int(net), int(fee)


class Operator:
    """The backend's operator/issuer key acting on the certificate contract."""

    def __init__(self, rpc_url: str, key: str, certificate: str, market: str) -> None:
        self.w3 = Web3(HTTPProvider(rpc_url))
        self.key = key
        self.certificate = contract(self.w3, "CourseCertificate", certificate)
        self.market = contract(self.w3, "CourseMarket", market)

    def _send(self, fn: Any) -> Any:
        return send(self.w3, self.key, fn)

    def mint(self, learner: str, course_id: int, record_hash: bytes) -> int:
        """Grant access (certificates need it on-chain), then mint."""
        ref = bytes.fromhex(record_hash.hex().ljust(64, "0"))
        self._send(self.market.functions.grantAccess(course_id, learner, 3, ref))
        self._send(self.certificate.functions.mint(learner, course_id, record_hash))
        return int(self.certificate.functions.tokenIdFor(learner, course_id).call())

    def revoke(self, token_id: int, reason: int) -> None:
        self._send(self.certificate.functions.revoke(token_id, reason))

    def reissue(self, token_id: int, record_hash: bytes) -> int:
        """Correct a certificate: revoke it (reason CORRECTED) and issue the next generation."""
        receipt = self._send(self.certificate.functions.reissue(token_id, record_hash))
        replaced = self.certificate.events.CertificateReplaced()
        (event,) = replaced.process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["newTokenId"])
