"""Providers' public records: the hash the platform's verification is bound to."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak


def profile_hash(name: str, domain: str) -> str:
    """`keccak256(abi.encode(name, domain))`, 0x-hex: what `verifyProvider` takes."""
    return "0x" + keccak(encode(["string", "string"], [name, domain])).hex()
