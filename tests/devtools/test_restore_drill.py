"""scripts/restore_drill.py: the production shape with purchases on both rails and certificates,
a backup, more of them, the database lost and restored, the services started again and the
Stripe events since the backup resent; the restored system ends where the lost one was (orders,
access, certificates), nothing duplicated on chain or in the database, every event applied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.prodlocal import nginx_path

pytestmark = [pytest.mark.slow, pytest.mark.chain]

ROOT = Path(__file__).resolve().parents[2]


def test_restore_drill_brings_back_everything_after_the_backup(tmp_path: Path) -> None:
    try:
        nginx_path()
    except RuntimeError as exc:  # scripts/setup installs it: its absence is a broken setup
        pytest.fail(str(exc))
    out = tmp_path / "drill.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUITION_")}
    env["PATH"] = f"{ROOT / '.tools' / 'bin'}:{ROOT / 'node_modules' / '.bin'}:{env['PATH']}"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "restore_drill.py"),
            *("--learners", "4"),
            *("--out", str(out)),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
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
