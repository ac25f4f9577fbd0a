"""EIP-712 signing helpers for the contract tests and scripts/gas_report.py.

Signs with eth-account directly from a private key, so the same code works for Ape test accounts
(which expose ``private_key``) and for throwaway keys created in a test.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account

PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}

VOUCHER_TYPES = {
    "Voucher": [
        {"name": "learner", "type": "address"},
        {"name": "courseId", "type": "uint256"},
        {"name": "recordHash", "type": "bytes28"},
        {"name": "deadline", "type": "uint256"},
    ]
}


def _sign(private_key: str | bytes, domain: dict[str, Any], types: dict, message: dict) -> Any:
    return Account.sign_typed_data(private_key, domain, types, message)


def sign_permit(
    private_key: str | bytes,
    *,
    token: Any,
    owner: str,
    spender: str,
    value: int,
    deadline: int,
    chain_id: int,
    nonce: int | None = None,
) -> tuple[int, bytes, bytes]:
    """Sign an EIP-2612 permit for an OpenZeppelin ERC20Permit token.

    Returns:
        The (v, r, s) triple as the contracts take it.
    """
    domain = {
        "name": token.name(),
        "version": "1",
        "chainId": chain_id,
        "verifyingContract": str(token.address),
    }
    message = {
        "owner": str(owner),
        "spender": str(spender),
        "value": value,
        "nonce": token.nonces(owner) if nonce is None else nonce,
        "deadline": deadline,
    }
    signed = _sign(private_key, domain, PERMIT_TYPES, message)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def sign_voucher(
    private_key: str | bytes,
    *,
    certificate: str,
    learner: str,
    course_id: int,
    record_hash: bytes,
    deadline: int,
    chain_id: int,
    name: str = "Tuition Certificate",
    version: str = "1",
) -> bytes:
    """Sign a CourseCertificate claim voucher; the domain can be overridden to test rejection.

    Returns:
        The 65-byte signature (r, s, v).
    """
    domain = {
        "name": name,
        "version": version,
        "chainId": chain_id,
        "verifyingContract": str(certificate),
    }
    message = {
        "learner": str(learner),
        "courseId": course_id,
        "recordHash": record_hash,
        "deadline": deadline,
    }
    return bytes(_sign(private_key, domain, VOUCHER_TYPES, message).signature)
