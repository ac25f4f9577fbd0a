"""Running the project's scripts from tests as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.prodlocal import nginx_path

ROOT = Path(__file__).resolve().parents[2]


def run_production_script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/`name` (one that starts the production shape) with the project's tools on
    PATH and none of this test run's TUITION_ settings: it builds its own for every process.
    Fails (never skips) without nginx, which scripts/setup installs."""
    try:
        nginx_path()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUITION_")}
    env["PATH"] = f"{ROOT / '.tools' / 'bin'}:{ROOT / 'node_modules' / '.bin'}:{env['PATH']}"
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
