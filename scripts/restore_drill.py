#!/usr/bin/env python3
"""The restore drill: a backup restores into a running production shape with nothing lost.

    .venv/bin/python scripts/restore_drill.py            # 8 learners, then 8 more
    .venv/bin/python scripts/restore_drill.py --keep     # keep the logs

On its own PostgreSQL and Redis (as scripts/fault_run.py), the production shape with the demo
catalog: learners buy on both rails (a third of the card buyers refunded, a third of everyone
completing the course: certificates minted); `tuition backup`; as many learners again; then the
database is lost: the services are stopped, the database dropped and created empty, `tuition
restore` run, the services started again, and the Stripe events delivered since the backup sent
again (what an operator does from the Dashboard). It then waits until the restored system says
what the lost one said: the same orders (rail, buyer, course, status), the same active access,
the same certificates; and checks against the chain and the stand-in that nothing is duplicated
(purchases, mints) and that every Stripe event is applied. Exit 0 only then.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fault_run import (
    ROOT,
    Load,
    OwnPostgres,
    check,
    prod_config,
    redeliver_failed_webhooks,
    services,
)
from web3 import Web3

from backend.devstack import raise_interrupt, reap, terminate, wait_until
from backend.prodlocal import ProdStack

APP_SERVICES = ("api-1", "api-2", "worker-1", "worker-2", "beat", "indexer-1", "indexer-2")
# Counts that must be zero; `lost_orders` is left out: a crypto order whose quote was lost with
# the database is made again from the chain's event, under a new id (compared by content below).
MUST_BE_ZERO = (
    "duplicated_orders",
    "duplicated_grants",
    "duplicated_mints",
    "duplicated_purchases_onchain",
    "lost_mints",
    "lost_webhook_applications",
    "failed_learners",
)


def state(url: str) -> dict[str, Any]:
    """What the database says: orders by content, active access, minted certificates."""
    with psycopg.connect(url) as conn:
        orders = Counter(
            f"{rail} {buyer} {course} {status}"
            for rail, buyer, course, status in conn.execute(
                "SELECT rail, buyer, course_id, status FROM orders"
                " WHERE status IN ('paid', 'refunded')"
            )
        )
        access = sorted(
            f"{address} {course}"
            for address, course in conn.execute(
                "SELECT address, course_id FROM entitlements WHERE revoked_at IS NULL"
            )
        )
        certificates = sorted(
            str(token)
            for (token,) in conn.execute(
                "SELECT token_id FROM certificates WHERE status = 'minted'"
            )
        )
    return {"orders": dict(orders), "access": access, "certificates": certificates}


def tuition(*args: str, database_url: str) -> str:
    """Run `tuition ARGS` against `database_url`; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUITION_")}
    env["TUITION_DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tuition {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


def run_learners(load: Load, first: int, count: int, concurrency: int) -> None:
    slots = threading.Semaphore(concurrency)

    def one(n: int) -> None:
        with slots:
            load.learner(n)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(first, first + count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def settled(
    pg: OwnPostgres, chain: Web3, stack: ProdStack, load: Load, timeout: float
) -> dict[str, int]:
    """Wait until no count of `MUST_BE_ZERO` is off (or the timeout); the last counts."""
    deadline = time.monotonic() + timeout
    while True:
        counts = check(pg.url, chain, stack.deployment, stack.stripe_url, load.purchases)
        if not any(counts[k] for k in MUST_BE_ZERO) or time.monotonic() > deadline:
            return counts
        time.sleep(3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=8, help="Learners before the backup.")
    parser.add_argument("--out", type=Path, default=None, help="Write the report (JSON) here.")
    parser.add_argument("--keep", action="store_true", help="Keep the logs (temporary dir).")
    args = parser.parse_args()
    # SIGTERM (a test's timeout, a supervisor) stops the drill as Ctrl-C does.
    signal.signal(signal.SIGTERM, raise_interrupt)
    root = Path(tempfile.mkdtemp(prefix="tuition-drill-"))
    root.chmod(0o755)  # the postgres user reaches its cluster inside
    try:
        with services(root) as (pg, redis_srv):
            return drill(args, root, pg, redis_srv.url)
    finally:
        if args.keep:
            print(f"logs kept in {root / 'prod' / 'logs'}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


def drill(args: argparse.Namespace, root: Path, pg: OwnPostgres, redis_url: str) -> int:

    config = prod_config(root, pg, redis_url)
    stack = ProdStack(config)
    try:
        stack.start()
        load = Load.on(stack)
        chain, provider = load.chain, load.provider
        run_learners(load, 0, args.learners, concurrency=4)
        before_backup = settled(pg, chain, stack, load, 180)
        made = tuition("backup", "--dir", str(root / "backups"), database_url=pg.url)
        print(made.strip(), flush=True)
        backup = Path(made.split()[1])
        delivered = {d["event_id"] for d in _deliveries(stack.stripe_url)}

        run_learners(load, args.learners, args.learners, concurrency=4)
        lost_counts = settled(pg, chain, stack, load, 180)
        lost = state(pg.url)
        print(f"before the loss: {json.dumps(_summary(lost))}", flush=True)

        # The database is lost: stop what uses it, recreate it empty, restore, start again.
        for name in APP_SERVICES:
            terminate(stack.processes[name])
        for name in APP_SERVICES:
            reap(stack.processes[name], 30)
        admin = pg.url.replace("/tuition", "/postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE tuition WITH (FORCE)")
            conn.execute("CREATE DATABASE tuition")
        print(tuition("restore", str(backup), database_url=pg.url).strip(), flush=True)
        restored_at_backup = state(pg.url)
        for name in APP_SERVICES:
            stack.restart(name)
        for port in config.api_ports:
            wait_until(lambda port=port: _ready(port), 120, f"API replica on {port}")
        # Stripe delivered these once already: the operator resends them (Dashboard, CLI).
        resent = list(
            dict.fromkeys(
                e["event_id"]
                for e in _deliveries(stack.stripe_url)
                if e["event_id"] not in delivered
            )
        )
        for event_id in resent:
            _resend(stack.stripe_url, event_id)

        deadline = time.monotonic() + 240
        while True:
            after = state(pg.url)
            if after == lost or time.monotonic() > deadline:
                break
            time.sleep(3)
            # What Stripe does by itself: deliveries that failed are tried again.
            redeliver_failed_webhooks(stack.stripe_url)
        counts = settled(pg, chain, stack, load, 120)
        provider.close()
        report = {
            "learners": len(load.purchases),
            "backup": backup.name,
            "before_backup": {k: before_backup[k] for k in MUST_BE_ZERO},
            "before_loss": {k: lost_counts[k] for k in MUST_BE_ZERO},
            "restored_at_backup": _summary(restored_at_backup),
            "lost_state": _summary(lost),
            "after_restore": _summary(after),
            "same_state_as_before_the_loss": after == lost,
            "differences": _differences(lost, after),
            "events_resent": len(resent),
            "checks": {k: counts[k] for k in MUST_BE_ZERO},
            "failures": [p.error for p in load.purchases if p.error][:10],
        }
        print(json.dumps(report, indent=2), flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
        ok = after == lost and not any(counts[k] for k in MUST_BE_ZERO)
        ok = ok and restored_at_backup != lost  # the drill lost something to bring back
        return 0 if ok else 1
    finally:
        stack.stop()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _resend(stripe: str, event_id: str) -> None:
    httpx.post(f"{stripe}/_fake/events/{event_id}/redeliver", timeout=30)


def _deliveries(stripe: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stripe}/_fake/deliveries", timeout=30).json()["data"])


def _summary(s: dict[str, Any]) -> dict[str, int]:
    return {
        "orders": sum(s["orders"].values()),
        "access": len(s["access"]),
        "certificates": len(s["certificates"]),
    }


def _differences(lost: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("access", "certificates"):
        gone = sorted(set(lost[key]) - set(after[key]))
        extra = sorted(set(after[key]) - set(lost[key]))
        if gone or extra:
            out[key] = {"missing": gone[:10], "extra": extra[:10]}
    orders = Counter(lost["orders"])
    orders.subtract(Counter(after["orders"]))
    if any(orders.values()):
        out["orders"] = {k: v for k, v in orders.items() if v}
    return out


if __name__ == "__main__":
    sys.exit(main())
