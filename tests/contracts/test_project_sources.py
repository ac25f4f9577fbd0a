"""Ape compiles every contract in the repository, and nothing else, in any checkout.

Ape scans at most 500 files under `contracts/` for sources. Dependencies that ape-solidity
unpacks into `contracts/.cache` count towards that cap, so OpenZeppelin is resolved from
node_modules by a solc remapping instead (ape-config.yaml); these tests fail if that regresses.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"


def test_every_solidity_file_in_the_repository_is_a_project_source(project):
    on_disk = {
        path.relative_to(ROOT).as_posix()
        for path in CONTRACTS.rglob("*.sol")
        if ".cache" not in path.relative_to(CONTRACTS).parts
    }
    scanned = {Path(path).resolve().relative_to(ROOT).as_posix() for path in project.sources.paths}
    assert on_disk == scanned


def test_compiling_unpacks_no_dependency_into_the_contracts_folder(project):
    project.load_contracts()
    cache = CONTRACTS / ".cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_the_test_contracts_are_compiled(project):
    for name in ("TestToken", "FeeOnTransferToken", "ReentrantPayee", "IndexerLogEmitter"):
        assert getattr(project, name).contract_type.name == name
