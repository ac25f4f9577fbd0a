"""scripts/fault_run.py --quick: the production shape under load while an API replica, the active
indexer, a worker mid-mint, Redis, PostgreSQL and nginx fail in turn; nothing is lost or
duplicated, every request succeeded or got a retryable answer, the standby takes over.

The script's own checks (from the database, the chain and the Stripe stand-in) are what it
prints; this test runs it as a user would and holds each figure to its bound.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from support.scripts import ROOT, run_production_script

pytestmark = [pytest.mark.slow, pytest.mark.chain]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_run", ROOT / "scripts" / "fault_run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_run"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fault_run = _script()


def test_quick_fault_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    proc = run_production_script("fault_run.py", "--quick", "--out", str(out))
    log = (proc.stdout + proc.stderr)[-6000:]
    assert out.exists(), log
    report = json.loads(out.read_text())
    checks = report["checks"]
    for name in fault_run.CHECKS:
        assert checks[name] == 0, f"{name}: {checks[name]}\n{log}"
    assert checks["failed_learners"] == 0, report["failures"]
    assert checks["webhook_events"] > 0  # the card rail was exercised
    assert report["bad_requests"] == 0, report["unexpected_answers"]
    assert report["unexpected_exits"] == []
    assert [f["fault"] for f in report["faults"]] == list(fault_run.FAULT_NAMES)
    (indexer,) = [f for f in report["faults"] if f["fault"] == "kill -9 the active indexer"]
    assert 0 < indexer["takeover_seconds"] < 60
    assert report["served"] > 0
    assert proc.returncode == 0, log
