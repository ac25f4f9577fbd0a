"""Real worker processes consuming from the configured broker: embedded (SQLite) and Redis.

Includes the crash test: the worker is killed with SIGKILL after the mint transaction was sent and
recorded but before its receipt was stored; after a restart there is exactly one certificate
on-chain, one certificate record, one transaction and one receipt email.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from support.anvil import Anvil
from support.market import ROOT, new_learner
from support.procs import free_port, wait_for
from support.worker import Proc, WorkerEnv

from backend.certificates.models import CertificateStatus
from backend.certificates.service import token_id_for
from backend.core.db import session_scope
from backend.worker.models import SentReceipt, WorkerProcess, WorkerTxAttempt

pytestmark = [pytest.mark.chain, pytest.mark.slow]

FAST = {
    "TUITION_WORKER_RELAY_INTERVAL": "0.5",
    "TUITION_WORKER_RESUME_INTERVAL": "1",
    "TUITION_WORKER_RECOVER_INTERVAL": "2",
    "TUITION_WORKER_RECEIPT_TIMEOUT": "20",
}


@pytest.fixture(params=["embedded", "redis"])
def broker(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment selecting the broker under test."""
    if request.param == "embedded":
        return {}
    redis_url = request.getfixturevalue("redis_url")
    # A key prefix of its own: parallel runs sharing the Redis db never see each other's tasks.
    return {
        "TUITION_REDIS_URL": redis_url,
        "TUITION_WORKER_REDIS_KEY_PREFIX": f"tuition-test-{uuid.uuid4().hex[:8]}:",
    }


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Spawned processes, all killed at the end of the test."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def ping(wenv: WorkerEnv, env: dict[str, str]) -> int:
    import os

    full = {**os.environ, **wenv.env}
    full.pop("TUITION_REDIS_URL", None)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "worker-ping", "--timeout", "20"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        timeout=60,
        check=False,
    ).returncode


def test_worker_consumes_the_outbox(
    wenv: WorkerEnv, anvil: Anvil, broker: dict[str, str], procs: list[Proc]
) -> None:
    env = {**FAST, **broker}
    if broker:
        # Redis: a separate scheduler process, as in docker-compose.
        procs.append(wenv.spawn("beat", extra=env, log="beat"))
        procs.append(wenv.spawn("worker", "--concurrency", "2", extra=env))
    else:
        metrics_port = free_port()
        procs.append(
            wenv.spawn(
                "worker",
                "--beat",
                "--concurrency",
                "2",
                "--metrics-port",
                str(metrics_port),
                extra=env,
            )
        )

    learner = new_learner(anvil)
    course = wenv.deployed.courses[0]
    wenv.user(learner.address, "proc@example.com")
    # Paid by card, then completed: the card grant is what lets the certificate be minted.
    wenv.paid_card_order(learner.address, course)
    cert_id = wenv.request_certificate(learner.address, course, enrol=False)

    def done() -> bool:
        return (
            wenv.certificate(cert_id).status == CertificateStatus.MINTED
            and wenv.deployed.market.functions.hasAccess(course, learner.address).call()
            and len(wenv.mail_files()) == 1
        )

    try:
        wait_for(done, timeout=90, what="certificate, grant and receipt")
    except AssertionError:
        print("\n".join(p.output() for p in procs))
        raise
    assert wenv.unpublished() == 0
    assert (wenv.state_dir / "beat.alive").exists()
    assert ping(wenv, env) == 0
    if not broker:
        # Prefork children's counters, aggregated by the main process's endpoint.
        succeeded = (
            'tuition_worker_tasks_total{outcome="succeeded",task="tuition.mint_certificate"}'
        )
        body = wait_for(
            lambda: (
                text
                if succeeded in (text := httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
                else None
            ),
            timeout=30,
            what="task metrics",
        )
        assert "tuition_outbox_published_total" in body


def test_kill_9_mid_mint_then_restart(
    wenv: WorkerEnv, anvil: Anvil, broker: dict[str, str], procs: list[Proc]
) -> None:
    env = {
        **FAST,
        **broker,
        # A message taken by the killed worker comes back: from Redis after the visibility
        # timeout; on the embedded broker, which loses it, from `resume_stalled`.
        "TUITION_WORKER_VISIBILITY_TIMEOUT": "5",
        "TUITION_WORKER_STALLED_AFTER": "3600" if broker else "5",
        "TUITION_WORKER_RECEIPT_CLAIM_LEASE": "5",
    }
    first = wenv.spawn(
        "worker",
        "--beat",
        "--concurrency",
        "2",
        extra={**env, "TUITION_WORKER_TEST_PAUSE_AFTER_SEND": "120"},
        log="first",
    )
    procs.append(first)

    learner = new_learner(anvil)
    course = wenv.deployed.courses[1]
    wenv.user(learner.address, "crash@example.com")
    # Paid by card, then completed: the card grant is what lets the certificate be minted.
    wenv.paid_card_order(learner.address, course)
    cert_id = wenv.request_certificate(learner.address, course, enrol=False)

    # The mint is sent and its hash stored; the worker now sleeps before awaiting the receipt.
    try:
        wait_for(lambda: wenv.certificate(cert_id).tx_hash, timeout=90, what="mint sent")
    except AssertionError:
        print(first.output())
        raise
    sent_hash = wenv.certificate(cert_id).tx_hash
    first.kill()  # SIGKILL to the whole group: worker, pool children, embedded beat
    assert wenv.certificate(cert_id).status == CertificateStatus.MINTING
    token_id = token_id_for(course, learner.address)
    assert wenv.deployed.certificate.functions.ownerOf(token_id).call() == learner.address

    second = wenv.spawn("worker", "--beat", "--concurrency", "2", extra=env, log="second")
    procs.append(second)
    try:
        wait_for(
            lambda: (
                wenv.certificate(cert_id).status == CertificateStatus.MINTED
                and wenv.count(SentReceipt, SentReceipt.status == "sent") == 1
                and wenv.deployed.market.functions.hasAccess(course, learner.address).call()
                and [t.status for t in wenv.transactions("grant:")] == ["mined"]
            ),
            timeout=120,
            what="recovery after the crash",
        )
    except AssertionError:
        print(first.output(), second.output())
        raise

    assert wenv.deployed.certificate.functions.balanceOf(learner.address).call() == 1
    (tx,) = wenv.transactions("mint:")
    assert tx.status == "mined" and tx.tx_hash == sent_hash
    assert wenv.certificate(cert_id).tx_hash == sent_hash
    # One attempt per transaction: nothing was re-signed or sent twice.
    assert wenv.count(WorkerTxAttempt) == len(wenv.transactions())
    with session_scope(wenv.factory) as s:
        (receipt,) = s.scalars(select(SentReceipt)).all()
        assert receipt.status == "sent"
    assert len(wenv.transactions("grant:")) == 1
    assert len(wenv.mail_files()) == 1


def test_worker_keeps_checking_a_pending_mint(
    wenv: WorkerEnv, anvil: Anvil, procs: list[Proc]
) -> None:
    env = {**FAST, "TUITION_WORKER_RECEIPT_TIMEOUT": "1"}
    procs.append(wenv.spawn("worker", "--beat", "--concurrency", "2", extra=env))
    learner = new_learner(anvil)
    cert_id = wenv.request_certificate(learner.address, wenv.deployed.courses[4])
    with anvil.no_automine():
        wait_for(lambda: wenv.certificate(cert_id).tx_hash, timeout=60, what="mint sent")
        # Several checks come and go while the block is not mined; none sends again.
        wait_for(lambda: wenv.jobs()[0].runs >= 2, timeout=60, what="a re-check")
        assert wenv.certificate(cert_id).status == CertificateStatus.MINTING
    wait_for(
        lambda: (
            wenv.certificate(cert_id).status == CertificateStatus.MINTED
            and wenv.jobs()[0].status == "done"
        ),
        timeout=60,
        what="minted once the block exists",
    )
    (job,) = wenv.jobs()
    # The check after the block finds the receipt, or (first) the certificate itself.
    assert job.status == "done" and job.result
    assert job.result["outcome"] in ("minted", "already_on_chain")
    (tx,) = wenv.transactions("mint:")
    assert tx.status == "mined" and tx.tx_hash == wenv.certificate(cert_id).tx_hash


def children(pid: int) -> set[int]:
    """Pids of the direct children of `pid` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def heartbeats(wenv: WorkerEnv) -> dict[str, datetime]:
    with session_scope(wenv.factory) as s:
        return {row.process: row.seen_at for row in s.scalars(select(WorkerProcess))}


def test_each_worker_process_beats_and_a_clean_stop_removes_the_heartbeats(
    wenv: WorkerEnv, procs: list[Proc]
) -> None:
    env = {"TUITION_WORKER_HEARTBEAT_INTERVAL": "0.2"}
    samples = set(Path(tempfile.gettempdir()).glob("tuition-metrics-*"))
    worker = wenv.spawn(
        "worker",
        *("--concurrency", "2", "--hostname", "beater@%h", "--metrics-port", str(free_port())),
        extra=env,
    )
    procs.append(worker)
    # The names written into `claimed_by`: "<node>:<pid>" of each pool process (the job it
    # runs) and of the main process (the messages it received).
    expected = wait_for(
        lambda: (
            names
            if len(pool := children(worker.proc.pid)) == 2
            and set(heartbeats(wenv))
            == (
                names := {
                    f"beater@{socket.gethostname()}:{pid}" for pid in {*pool, worker.proc.pid}
                }
            )
            else None
        ),
        timeout=60,
        what="a heartbeat per worker process",
    )
    first = heartbeats(wenv)
    wait_for(
        lambda: all(seen > first[name] for name, seen in heartbeats(wenv).items()),
        timeout=10,
        what="every process beating again",
    )
    (own_samples,) = set(Path(tempfile.gettempdir()).glob("tuition-metrics-*")) - samples
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=60) == 0
    assert heartbeats(wenv) == {}, f"left behind by {expected}"
    assert not own_samples.exists()  # the prefork metrics samples go with the worker


def test_sigterm_lets_the_running_mint_finish_before_the_worker_exits(
    wenv: WorkerEnv, anvil: Anvil, procs: list[Proc]
) -> None:
    # What compose (and prod-local) do on stop: SIGTERM to the worker's main process only.
    env = {**FAST, "TUITION_WORKER_TEST_PAUSE_AFTER_SEND": "3"}
    worker = wenv.spawn("worker", "--beat", "--concurrency", "2", extra=env)
    procs.append(worker)
    learner = new_learner(anvil)
    cert_id = wenv.request_certificate(learner.address, wenv.deployed.courses[3])
    wait_for(lambda: wenv.certificate(cert_id).tx_hash, timeout=90, what="mint sent")
    worker.proc.send_signal(signal.SIGTERM)  # mid-mint: sent, its receipt not yet awaited
    assert worker.proc.wait(timeout=60) == 0, worker.output()
    # The task ran to its end in the process that started it: nothing left for anyone else.
    assert wenv.certificate(cert_id).status == CertificateStatus.MINTED
    (job,) = wenv.jobs()
    assert job.status == "done" and job.runs == 1, worker.output()
    (tx,) = wenv.transactions("mint:")
    assert tx.status == "mined"
    assert heartbeats(wenv) == {}
