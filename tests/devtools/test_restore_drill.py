"""scripts/restore_drill.py: the production shape with purchases on both rails and certificates,
a backup, more of them, the database lost and restored, the services started again and the
Stripe events since the backup resent; the restored system ends where the lost one was (orders,
access, certificates), nothing duplicated on chain or in the database, every event applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.scripts import run_production_script

pytestmark = [pytest.mark.slow, pytest.mark.chain]


def test_restore_drill_brings_back_everything_after_the_backup(tmp_path: Path) -> None:
    out = tmp_path / "drill.json"
    proc = run_production_script("restore_drill.py", "--learners", "4", "--out", str(out))
    log = (proc.stdout + proc.stderr)[-6000:]
    assert out.exists(), log
    report = json.loads(out.read_text())
    # The backup's instant was behind: the drill had something to bring back.
    assert report["restored_at_backup"]["orders"] < report["lost_state"]["orders"], report
    assert report["restored_at_backup"]["access"] < report["lost_state"]["access"], report
    assert report["after_restore"] == report["lost_state"], report["differences"]
    assert report["same_state_as_before_the_loss"] is True
    assert report["events_resent"] > 0
    assert set(report["checks"].values()) == {0}, report["checks"]
    assert report["failures"] == []
    assert proc.returncode == 0, log
