"""The alert rules shipped in deploy/prometheus, as the tests read them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def rule_metrics() -> set[str]:
    """Every tuition_* metric the alert expressions select."""
    groups = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
    return {
        name
        for group in groups
        for rule in group["rules"]
        for name in re.findall(r"\btuition_[a-z0-9_]+", rule["expr"])
    }
