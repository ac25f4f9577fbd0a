"""Compiled contract artifacts committed with the code, so no process needs a compiler.

`scripts/export_abis.py` writes them from Ape's build; a contract test fails when they drift.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent
ABI_DIR = ARTIFACTS_DIR / "abi"
BYTECODE_DIR = ARTIFACTS_DIR / "bytecode"

# ICourseCertificate.Certificate's fields, in order (web3 returns the struct as a tuple).
CERTIFICATE_FIELDS = (
    "holder", "courseId", "issuer", "issuerVerified", "issuedAt", "recordHash", "revoked",
    "revokedAt", "revokeReason", "removed", "replacedBy",
)  # fmt: skip


def abi_path(name: str) -> str:
    """The ABI file of `name`, relative to the project root (as deployment files name it)."""
    return f"backend/chain/abi/{name}.json"


@cache
def load_abi(name: str) -> list[dict[str, Any]]:
    """The ABI of contract `name`."""
    abi: list[dict[str, Any]] = json.loads((ABI_DIR / f"{name}.json").read_text())
    return abi


@cache
def load_bytecode(name: str) -> str:
    """The creation bytecode of contract `name`, 0x-prefixed."""
    return (BYTECODE_DIR / f"{name}.bin").read_text().strip()
