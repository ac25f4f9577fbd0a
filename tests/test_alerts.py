"""deploy/prometheus/alerts.yml: valid rules (`promtool check rules`) that fire as meant
(`promtool test rules alerts_test.yml`). That every metric they use exists is checked against the
running services in tests/devtools/test_prod_local.py."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from support.alerts import RULES


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:  # scripts/setup installs it: its absence is a broken setup, not a skip
        pytest.fail("promtool is missing: run scripts/setup (Debian's prometheus package)")
    return found


def test_alert_rules_are_valid() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 18 rules found" in done.stdout


def test_alert_rules_fire_as_their_unit_tests_say() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_failure_the_operators_asked_for_has_an_alert() -> None:
    names = {
        rule["alert"]
        for group in yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    assert names >= {
        "TuitionIndexerLagBlocks",
        "TuitionIndexerLagSeconds",
        "TuitionIndexerNoLeader",
        "TuitionIndexerDown",
        "TuitionIndexerHalted",
        "TuitionOutboxBacklog",
        "TuitionOutboxStale",
        "TuitionTransactionsPendingTooLong",
        "TuitionSenderNonceStuck",
        "TuitionMintsFailing",
        "TuitionGrantsFailing",
        "TuitionWebhookFailures",
        "TuitionWebhookSignatureRejections",
        "TuitionReconcileDrift",
        "TuitionApiErrorRate",
        "TuitionApiLatencyP99",
        "TuitionDatabasePoolNearLimit",
    }
    # The unit tests cover at least lag, backlog and drift.
    tested = (RULES / "alerts_test.yml").read_text()
    for alert in ("TuitionIndexerLagBlocks", "TuitionOutboxBacklog", "TuitionReconcileDrift"):
        assert f"alertname: {alert}\n" in tested
