"""EIP-712 claim vouchers of CourseCertificate, signed with the issuer key.

Typed data: `Voucher(address learner,uint256 courseId,bytes28 recordHash,uint256 deadline)` in
domain ("Tuition Certificate", "1", chainId, certificate contract). The learner submits the
signature with `claim(courseId, recordHash, deadline, signature)` from their own wallet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3

DOMAIN_NAME = "Tuition Certificate"
DOMAIN_VERSION = "1"
VOUCHER_TYPES = {
    "Voucher": [
        {"name": "learner", "type": "address"},
        {"name": "courseId", "type": "uint256"},
        {"name": "recordHash", "type": "bytes28"},
        {"name": "deadline", "type": "uint256"},
    ]
}


@dataclass(frozen=True)
class Voucher:
    """A signed voucher, ready for `claim`."""

    learner: str
    course_id: int
    record_hash: bytes
    deadline: int
    signature: str  # 0x, 65 bytes
    digest: str  # the EIP-712 digest that was signed


def record_hash28(value: bytes | str) -> bytes:
    """A bytes28 record hash from 28 raw bytes, or a hex string of 28 or 32 bytes (truncated)."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) == 32:
        raw = raw[:28]
    if len(raw) != 28:
        raise ValueError(f"record hash must be 28 (or 32) bytes, got {len(raw)}")
    if raw == bytes(28):
        raise ValueError("record hash must not be zero")
    return raw


def typed_data(
    chain_id: int, contract: str, learner: str, course_id: int, record_hash: bytes, deadline: int
) -> dict[str, Any]:
    """The full EIP-712 message (also what a wallet would show)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            **VOUCHER_TYPES,
        },
        "primaryType": "Voucher",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": Web3.to_checksum_address(contract),
        },
        "message": {
            "learner": Web3.to_checksum_address(learner),
            "courseId": course_id,
            "recordHash": record_hash,
            "deadline": deadline,
        },
    }


def sign_voucher(
    issuer: LocalAccount,
    *,
    chain_id: int,
    contract: str,
    learner: str,
    course_id: int,
    record_hash: bytes,
    deadline: int,
) -> Voucher:
    """Sign a claim voucher with `issuer` (deterministic: RFC 6979 nonces)."""
    message = encode_typed_data(
        full_message=typed_data(chain_id, contract, learner, course_id, record_hash, deadline)
    )
    signed = issuer.sign_message(message)
    return Voucher(
        learner=Web3.to_checksum_address(learner),
        course_id=course_id,
        record_hash=record_hash,
        deadline=deadline,
        signature=signed.signature.to_0x_hex(),
        digest=signed.message_hash.to_0x_hex(),
    )
