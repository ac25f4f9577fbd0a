"""The indexer as a process: kill -9 at random instants, restart, standby takeover, metrics."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from support.emitter import ROOT, address, write_deployment
from support.indexer import active_entitlements, applied_count, duplicate_keys, orders

from backend.audit.models import AuditEntry
from backend.core.config import IndexerSettings, Settings
from indexer.models import IndexerCheckpoint
from indexer.runner import EXIT_OK, run

ZERO = "0x" + "00" * 20
PROVIDER = address(0xA11CE)


def checkpoint(db) -> int:
    with db.sessions() as s:
        value = s.scalar(select(func.max(IndexerCheckpoint.block_number)))
        return -1 if value is None else int(value)


def indexer_env(db, anvil, deployment: Path, rpc_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUITION_")}
    env.update(
        TUITION_ENV="test",
        TUITION_DATABASE_URL=db.url,
        TUITION_RPC_URL=rpc_url,
        TUITION_CHAIN_ID=str(anvil.chain_id),
        TUITION_NETWORK="test",
        TUITION_INDEXER_DEPLOYMENT_FILE=str(deployment),
        TUITION_INDEXER_POLL_INTERVAL="0.05",
        TUITION_INDEXER_PROGRESS="false",
        # A killed leader's lock goes with its connection: take over without waiting a second.
        TUITION_INDEXER_STANDBY_INTERVAL="0.05",
        **extra,
    )
    return env


@pytest.mark.slow
def test_kill_9_during_backfill_loses_and_duplicates_nothing(db, anvil, emitter, tmp_path, rpc_url):
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Crash course")
    # 10,000 purchases over 200 blocks.
    for i in range(200):
        emitter.tx(
            "purchases", 1, address(1), 10_000 + 50 * i, 50, ZERO, 10**15, 10**13, gas=600_000
        )
    anvil.mine(5)
    head = anvil.block_number()
    deployment = write_deployment(
        tmp_path / "test.json",
        chain_id=anvil.chain_id,
        deploy_block=emitter.deploy_block,
        market=emitter.address,
        certificate=None,
    )
    # One block per range: many transactions, so kills land inside and between them.
    env = indexer_env(
        db,
        anvil,
        deployment,
        rpc_url,
        TUITION_INDEXER_INITIAL_RANGE="1",
        TUITION_INDEXER_MAX_RANGE="1",
        TUITION_INDEXER_REORG_WINDOW="4",
    )
    log = (tmp_path / "indexer.log").open("w")
    zygote = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("ixzygote.py"))],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert zygote.stdin is not None and zygote.stdout is not None

    def spawn(*env_overrides: str) -> int:
        zygote.stdin.write(" ".join(("spawn", *env_overrides)) + "\n")
        zygote.stdin.flush()
        return int(zygote.stdout.readline())

    rng = random.Random(1234)
    kills = 0
    try:
        for _ in range(16):
            before = checkpoint(db)
            if before >= head - 10:
                break
            pid = spawn()
            deadline = time.monotonic() + 30
            while checkpoint(db) <= before and time.monotonic() < deadline:
                time.sleep(0.005)  # this run has committed at least once
            time.sleep(rng.uniform(0.0, 0.06))
            os.kill(pid, signal.SIGKILL)
            kills += 1
            time.sleep(0.02)
        assert kills >= 10, "the backfill finished before enough kills; make it longer"
        # A last run to the end (with normal ranges), stopped cleanly.
        pid = spawn("TUITION_INDEXER_MAX_RANGE=100000", "TUITION_INDEXER_INITIAL_RANGE=20")
        deadline = time.monotonic() + 60
        while checkpoint(db) < head and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(pid, signal.SIGTERM)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)
    assert checkpoint(db) >= head, (tmp_path / "indexer.log").read_text()
    assert applied_count(db, "CoursePurchased") == 10_000
    assert duplicate_keys(db) == 0
    assert sum(active_entitlements(db).values()) == 10_000
    assert len(active_entitlements(db)) == 10_000
    assert len(orders(db)) == 10_000
    with db.sessions() as s:
        grants = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "access.grant")
        )
    assert grants == 10_000


def test_one_active_indexer_per_chain_and_standby_takeover(db, anvil, emitter, tmp_path, rpc_url):
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Standby course")
    deployment = write_deployment(
        tmp_path / "test.json",
        chain_id=anvil.chain_id,
        deploy_block=emitter.deploy_block,
        market=emitter.address,
        certificate=None,
    )
    settings = Settings(
        database_url=db.url, rpc_url=rpc_url, chain_id=anvil.chain_id, network="test"
    )
    ixs = IndexerSettings(
        deployment_file=deployment, poll_interval=0.02, progress=False, standby_interval=0.05
    )
    stops = [threading.Event(), threading.Event()]
    results: list[list[int]] = [[], []]
    threads = [
        threading.Thread(
            target=lambda i=i: results[i].append(
                run(settings, ixs, stop=stops[i], install_signals=False)
            )
        )
        for i in range(2)
    ]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        while checkpoint(db) < anvil.block_number() and time.monotonic() < deadline:
            time.sleep(0.02)
        from indexer import metrics

        assert metrics.ACTIVE.labels(str(anvil.chain_id))._value.get() == 1
        # Stop whichever is active: the other one takes over and keeps indexing.
        emitter.tx("purchased", 1, address(1), address(2), ZERO, 1, 0, "0x" + "00" * 32)
        deadline = time.monotonic() + 20
        while applied_count(db, "CoursePurchased") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        first = next(i for i in range(2) if not results[i])  # both still running
        stops[first].set()
        threads[first].join(timeout=20)
        assert results[first] == [EXIT_OK]
        emitter.tx("purchased", 1, address(1), address(3), ZERO, 1, 0, "0x" + "00" * 32)
        deadline = time.monotonic() + 20
        while applied_count(db, "CoursePurchased") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert applied_count(db, "CoursePurchased") == 2
        assert duplicate_keys(db) == 0
    finally:
        for s in stops:
            s.set()
        for t in threads:
            t.join(timeout=20)


def test_metrics_are_served(db, anvil, emitter, tmp_path):
    from support.procs import free_port

    emitter.tx("courseCreated", 1, PROVIDER, 0, "Metrics course")
    deployment = write_deployment(
        tmp_path / "test.json",
        chain_id=anvil.chain_id,
        deploy_block=emitter.deploy_block,
        market=emitter.address,
        certificate=None,
    )
    port = free_port()
    env = indexer_env(db, anvil, deployment, anvil.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "indexer", "--metrics-port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        body = ""
        while time.monotonic() < deadline:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                if (
                    'tuition_indexer_events_applied_total{chain="31337",event="CourseCreated"}'
                    in body
                ):
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        for name in (
            "tuition_indexer_head_lag_blocks",
            "tuition_indexer_reorgs_total",
            "tuition_indexer_last_block_timestamp_seconds",
            "tuition_indexer_active",
        ):
            assert name in body
        assert 'event="CourseCreated"} 1.0' in body
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == EXIT_OK, out
