"""A brand-new checkout compiles every contract of the project: the OpenZeppelin dependency Ape
unpacks into `contracts/.cache` (its `.sol` files only, see `toolchain.ensure_openzeppelin_
sources`) leaves Ape's 500-file source scan room for `contracts/test/*.sol`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.chain.toolchain import ensure_openzeppelin_sources, tool_path_env
from backend.core.config import PROJECT_ROOT

pytestmark = pytest.mark.chain

DECLARATION = re.compile(r"^(?:abstract\s+)?(?:contract|interface|library)\s+(\w+)", re.M)
SCAN_CAP = 500  # ape.managers.project: get_all_files_in_directory(contracts, max_files=500)


def _declared_contracts(folder: Path) -> set[str]:
    names: set[str] = set()
    for source in folder.rglob("*.sol"):
        if ".cache" in source.parts:
            continue
        text = source.read_text()
        names |= set(
            re.findall(r"^(?:abstract\s+)?(?:contract|interface|library)\s+(\w+)", text, re.M)
        )
    return names


def test_the_dependency_is_its_solidity_sources_alone() -> None:
    sources = ensure_openzeppelin_sources()
    files = [p for p in sources.rglob("*") if p.is_file()]
    assert all(p.suffix == ".sol" or p.name == ".version" for p in files)
    assert (sources / "token" / "ERC20" / "ERC20.sol").is_file()
    ours = [p for p in (PROJECT_ROOT / "contracts").rglob("*.*") if ".cache" not in p.parts]
    assert len(files) + len(ours) < SCAN_CAP


def test_a_new_checkout_with_an_empty_ape_data_folder_compiles_every_contract(
    tmp_path: Path,
) -> None:
    project = tmp_path / "checkout"
    project.mkdir()
    shutil.copytree(
        PROJECT_ROOT / "contracts", project / "contracts", ignore=shutil.ignore_patterns(".cache")
    )
    shutil.copy2(PROJECT_ROOT / "ape-config.yaml", project / "ape-config.yaml")
    (project / ".tools").mkdir()
    (project / ".tools" / "openzeppelin-contracts").symlink_to(ensure_openzeppelin_sources())
    env = {**tool_path_env(), "APE_DATA_FOLDER": str(tmp_path / "ape-data")}
    env.pop("APE_NETWORK", None)
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "ape"), "compile"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "contracts" / ".cache").is_dir()  # the dependency was unpacked there
    compiled = set(json.loads((project / ".build" / "__local__.json").read_text())["contractTypes"])
    expected = _declared_contracts(PROJECT_ROOT / "contracts")
    assert {"TestToken", "ReentrantPayee", "IndexerLogEmitter"} <= expected
    assert expected - compiled == set()

    # The next Ape command (`ape test`) scans contracts/ again, now holding the cache: it must
    # still see every source of ours (with the npm package's 507 files it saw 3 of 12).
    scan = subprocess.run(
        [
            str(PROJECT_ROOT / ".venv" / "bin" / "python"),
            "-c",
            "import json; from ape import project; "
            "print(json.dumps(sorted(str(p) for p in project.sources.paths)))",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert scan.returncode == 0, scan.stderr
    seen = {Path(p).resolve() for p in json.loads(scan.stdout.strip().splitlines()[-1])}
    ours = {p.resolve() for p in (project / "contracts").rglob("*.sol") if ".cache" not in p.parts}
    assert ours - seen == set()
