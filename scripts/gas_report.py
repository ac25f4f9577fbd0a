"""Measure the gas of the contracts' hot paths and write docs/gas.json.

An Ape script; it deploys fresh contracts on a fresh local anvil that Ape's foundry provider
starts (and stops) itself:

    PATH=$PWD/.tools/bin:$PWD/node_modules/.bin:$PATH \\
        .venv/bin/ape run gas_report --network ethereum:local:foundry

The measuring code lives in tests/contracts/gas_paths.py, shared with tests/contracts/test_gas.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ape import accounts, chain, project

ROOT = Path(__file__).resolve().parent.parent
# The measuring module sits with the tests that assert on it.
sys.path.insert(0, str(ROOT / "tests" / "contracts"))
sys.path.insert(0, str(ROOT / "tests"))

from gas_paths import TARGETS, measure_gas_paths  # noqa: E402

OUTPUT = ROOT / "docs" / "gas.json"


def main() -> None:
    """Run every hot path once, print the figures as JSON and write docs/gas.json."""
    if chain.chain_id not in (31337, 1337):
        raise SystemExit("gas_report deploys throwaway contracts: run it on a local chain only")
    figures = measure_gas_paths(accounts.test_accounts, project, chain)
    text = json.dumps(figures, indent=2) + "\n"
    print(text, end="")
    for key, target in TARGETS.items():
        status = "ok" if figures[key] <= target else "OVER TARGET"
        print(f"# {key}: {figures[key]} / {target} {status}", file=sys.stderr)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
