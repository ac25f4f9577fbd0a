"""Gas regression: the spec's targets, and docs/gas.json no more than 2 % below today's figures.

The figures come from tests/contracts/gas_paths.py, the code scripts/gas_report.py runs to write
docs/gas.json; after an intended change, re-run the report and commit docs/gas.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gas_paths import KEYS, TARGETS, measure_gas_paths

GAS_JSON = Path(__file__).resolve().parents[2] / "docs" / "gas.json"
TOLERANCE = 1.02


@pytest.fixture(scope="module")
def figures(accounts, project, chain):
    return measure_gas_paths(accounts, project, chain)


@pytest.mark.parametrize("path", sorted(TARGETS))
def test_target(figures, path):
    assert figures[path] <= TARGETS[path], f"{path}: {figures[path]} > {TARGETS[path]}"


def test_every_path_measured(figures):
    assert set(figures) == set(KEYS)
    assert all(value > 21_000 for value in figures.values())


def test_recorded_figures_are_current(figures):
    recorded = json.loads(GAS_JSON.read_text())
    assert set(recorded) == set(KEYS), "docs/gas.json keys differ: re-run the gas report"
    regressions = {
        key: (recorded[key], figures[key])
        for key in KEYS
        if figures[key] > recorded[key] * TOLERANCE
    }
    assert not regressions, f"gas above docs/gas.json + 2 % (recorded, now): {regressions}"
