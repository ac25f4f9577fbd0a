"""Export the compiled ABIs (and creation bytecode) the backend and indexer read.

An Ape script (compiles first if needed):

    .venv/bin/ape run export_abis

Writes plain JSON ABI arrays to backend/chain/abi/<Name>.json and 0x-prefixed creation bytecode
to backend/chain/bytecode/<Name>.bin, for CourseMarket, CourseCertificate and TestToken. Both are
committed; tests/contracts/test_abi_export.py fails when they differ from a fresh compile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ABI_DIR = ROOT / "backend" / "chain" / "abi"
BYTECODE_DIR = ROOT / "backend" / "chain" / "bytecode"
CONTRACTS = ("CourseMarket", "CourseCertificate", "TestToken")


def render_artifacts(project: Any) -> dict[Path, str]:
    """The exact text of every exported file, keyed by path."""
    files: dict[Path, str] = {}
    for name in CONTRACTS:
        contract_type = getattr(project, name).contract_type
        abi = [item.model_dump(mode="json", by_alias=True) for item in contract_type.abi]
        files[ABI_DIR / f"{name}.json"] = json.dumps(abi, indent=2) + "\n"
        bytecode = contract_type.deployment_bytecode.bytecode
        files[BYTECODE_DIR / f"{name}.bin"] = bytecode + "\n"
    return files


def main() -> None:
    """Write every artifact that changed and list what was written."""
    from ape import project

    for path, text in render_artifacts(project).items():
        if path.exists() and path.read_text() == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
