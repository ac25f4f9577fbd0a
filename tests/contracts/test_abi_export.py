"""The committed ABIs and bytecode (backend/chain/) must match a fresh compile.

Fix a failure with `.venv/bin/ape run export_abis` and commit the result.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_exporter():
    spec = importlib.util.spec_from_file_location(
        "export_abis", ROOT / "scripts" / "export_abis.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _strip_metadata(bytecode: str) -> str:
    """Drop solc's CBOR metadata trailer (its length is in the last two bytes): it hashes the
    sources' comments and paths, which do not change behaviour."""
    code = bytes.fromhex(bytecode.strip().removeprefix("0x"))
    length = int.from_bytes(code[-2:], "big")
    return code[: -(length + 2)].hex()


@pytest.fixture(scope="module")
def rendered(project):
    return _load_exporter().render_artifacts(project)


def test_committed_abis_match_compiled(rendered):
    stale = [
        str(path.relative_to(ROOT))
        for path, text in rendered.items()
        if path.suffix == ".json" and (not path.exists() or path.read_text() != text)
    ]
    assert not stale, f"stale ABIs, run `ape run export_abis`: {stale}"


def test_committed_bytecode_matches_compiled(rendered):
    stale = [
        str(path.relative_to(ROOT))
        for path, text in rendered.items()
        if path.suffix == ".bin"
        and (not path.exists() or _strip_metadata(path.read_text()) != _strip_metadata(text))
    ]
    assert not stale, f"stale bytecode, run `ape run export_abis`: {stale}"
