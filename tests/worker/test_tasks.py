"""Task bodies run eagerly against the real contracts: each effect once, however often run."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta
from email import message_from_bytes
from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Retry
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from support.anvil import Anvil
from support.market import new_learner, transact
from support.procs import wait_for
from support.worker import WorkerEnv

from backend.access import tasks as access_tasks
from backend.audit.models import AuditEntry
from backend.certificates import tasks as certificate_tasks
from backend.certificates.models import CertificateStatus
from backend.certificates.service import token_id_for
from backend.certificates.vouchers import record_hash28
from backend.chain.artifacts import CERTIFICATE_FIELDS
from backend.core.config import get_settings
from backend.core.db import session_scope, utcnow
from backend.orders import tasks as order_tasks
from backend.outbox.models import OutboxMessage
from backend.outbox.service import enqueue
from backend.worker import jobs, tasks
from backend.worker.heartbeat import Heartbeat
from backend.worker.jobs import upsert_job
from backend.worker.models import (
    JobStatus,
    ReconcileDrift,
    SentReceipt,
    WorkerJob,
    WorkerProcess,
    WorkerTransaction,
)
from backend.worker.outbox import relay_once

pytestmark = pytest.mark.chain


def relay() -> int:
    return int(tasks.relay_outbox.apply().get())


def run(task: Any, **kwargs: Any) -> Any:
    return task.apply(kwargs=kwargs).get()


# ---------------------------------------------------------------------- certificates


def test_mint_with_the_issuer_key_once(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    course = wenv.deployed.courses[0]
    cert_id = wenv.request_certificate(learner.address, course, mode="mint")

    assert relay() == 1
    cert = wenv.certificate(cert_id)
    assert cert.status == CertificateStatus.MINTED
    token_id = token_id_for(course, learner.address)
    assert cert.token_id == token_id and cert.tx_hash
    facts = wenv.deployed.certificate.functions.verify(token_id).call()
    onchain = dict(zip(CERTIFICATE_FIELDS, facts, strict=True))
    assert onchain["holder"] == learner.address and onchain["courseId"] == course
    assert onchain["recordHash"] == record_hash28(cert.record_hash)
    (job,) = wenv.jobs()
    assert job.status == JobStatus.DONE and job.runs == 1
    assert job.result and job.result["outcome"] == "minted"

    # Run again: by the relay (nothing left), by the task directly, twice.
    assert relay() == 0
    assert (
        run(certificate_tasks.mint_certificate, certificate_id=cert_id)["outcome"]
        == "already_final"
    )
    assert (
        run(certificate_tasks.mint_certificate, certificate_id=cert_id)["outcome"]
        == "already_final"
    )
    assert len(wenv.transactions("mint:")) == 1
    assert wenv.deployed.certificate.functions.balanceOf(learner.address).call() == 1


def test_mint_run_twice_before_marking_sends_one_transaction(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    cert_id = wenv.request_certificate(learner.address, wenv.deployed.courses[1])
    with anvil.no_automine():
        # The first run sends and gives up waiting (the block is not mined yet)...
        from backend.certificates.issuance import issue_certificate
        from backend.core.config import get_settings
        from backend.core.errors import TxNotMinedError
        from backend.worker.chain import get_chain
        from backend.worker.runtime import get_sender

        def attempt() -> dict[str, Any]:
            return issue_certificate(
                cert_id,
                factory=wenv.factory,
                chain=get_chain(),
                sender=get_sender(),
                settings=get_settings().worker.model_copy(update={"receipt_timeout": 0.5}),
            )

        with pytest.raises(TxNotMinedError):
            attempt()
        assert wenv.certificate(cert_id).status == CertificateStatus.MINTING
        first_hash = wenv.certificate(cert_id).tx_hash
        # ...and a second run (a redelivery) finds the pending transaction instead of sending.
        with pytest.raises(TxNotMinedError):
            attempt()
        anvil.mine()
    assert attempt()["outcome"] == "already_on_chain"
    assert [t.tx_hash for t in wenv.transactions("mint:")] == [first_hash]
    assert wenv.certificate(cert_id).status == CertificateStatus.MINTED


def test_voucher_signed_then_claimed_by_the_learner(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil, fund=True)
    course = wenv.deployed.courses[2]
    cert_id = wenv.request_certificate(learner.address, course, mode="voucher")

    relay()
    cert = wenv.certificate(cert_id)
    assert cert.status == CertificateStatus.CLAIMABLE
    assert cert.voucher_signature and cert.voucher_deadline
    assert cert.voucher_deadline > time.time() + 24 * 3600
    assert wenv.transactions() == []  # nothing sent by the worker in voucher mode
    again = run(certificate_tasks.mint_certificate, certificate_id=cert_id)
    assert again["outcome"] == "voucher_exists"

    contract = wenv.deployed.certificate
    record_hash = record_hash28(cert.record_hash)
    transact(
        wenv.deployed.w3,
        contract.functions.claim(
            course, record_hash, cert.voucher_deadline, bytes.fromhex(cert.voucher_signature[2:])
        ),
        learner,
    )
    token_id = token_id_for(course, learner.address)
    assert contract.functions.ownerOf(token_id).call() == learner.address
    # A late re-run sees the claimed certificate and marks the row minted (as the indexer would).
    assert (
        run(certificate_tasks.mint_certificate, certificate_id=cert_id)["outcome"]
        == "already_on_chain"
    )
    assert wenv.certificate(cert_id).status == CertificateStatus.MINTED


def test_voucher_matches_the_contract_digest(wenv: WorkerEnv, anvil: Anvil) -> None:
    from backend.certificates.vouchers import sign_voucher
    from backend.worker.chain import get_chain

    chain = get_chain()
    learner = new_learner(anvil)
    record_hash = bytes(range(1, 29))
    voucher = sign_voucher(
        chain.operator,
        chain_id=31337,
        contract=chain.certificate.address,
        learner=learner.address,
        course_id=7,
        record_hash=record_hash,
        deadline=123456789,
    )
    digest = chain.certificate.functions.voucherDigest(
        learner.address, 7, record_hash, 123456789
    ).call()
    assert "0x" + digest.hex() == voucher.digest


# ---------------------------------------------------------------------- card access


def access(wenv: WorkerEnv, course: int, learner: str) -> tuple[bool, int]:
    market = wenv.deployed.market
    record = market.functions.accessOf(course, learner).call()
    return market.functions.hasAccess(course, learner).call(), record[0]


def test_card_grant_and_revoke_are_recorded_once(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    course = wenv.deployed.courses[0]
    wenv.user(learner.address, "buyer@example.com")
    order_id = wenv.paid_card_order(learner.address, course)

    assert relay() == 2  # the grant and the receipt
    assert access(wenv, course, learner.address) == (True, 2)  # AccessSource.Card
    entitlement_id = wenv.entitlement_of(order_id)
    assert wenv.chain_status(entitlement_id) == "recorded"
    grant = access_tasks.record_access_grant
    assert run(grant, entitlement_id=entitlement_id)["outcome"] == "already_on_chain"
    assert run(grant, entitlement_id=entitlement_id)["outcome"] == "already_on_chain"
    assert len(wenv.transactions("grant:")) == 1

    wenv.refund_card_order(order_id)
    assert relay() == 2  # the revoke and the refund receipt
    assert access(wenv, course, learner.address) == (False, 0)
    assert wenv.chain_status(entitlement_id) == "revoked"
    revoke = access_tasks.record_access_revoke
    assert run(revoke, entitlement_id=entitlement_id)["outcome"] == "already_revoked"
    assert len(wenv.transactions("revoke:")) == 1
    # A stale grant message delivered after the refund does nothing.
    assert run(grant, entitlement_id=entitlement_id)["outcome"] == "not_entitled"
    assert access(wenv, course, learner.address) == (False, 0)

    mails = [message_from_bytes(p.read_bytes()) for p in wenv.mail_files()]
    assert sorted(m["Subject"].split()[0] for m in mails) == ["Receipt", "Refund"]
    assert all(m["To"] == "buyer@example.com" for m in mails)
    assert all(j.status == JobStatus.DONE for j in wenv.jobs())


def test_card_revoke_leaves_other_access_alone(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    course = wenv.deployed.courses[3]
    order_id = wenv.paid_card_order(learner.address, course, receipt=False)
    relay()
    # The learner's on-chain access is now another order's card grant: not ours to revoke.
    market = wenv.deployed.market
    from support.market import OPERATOR

    transact(
        wenv.deployed.w3,
        market.functions.revokeAccess(course, learner.address, b"\0" * 32),
        OPERATOR,
    )
    transact(
        wenv.deployed.w3,
        market.functions.grantAccess(course, learner.address, 2, b"\x42" * 32),
        OPERATOR,
    )
    wenv.refund_card_order(order_id, receipt=False)
    relay()
    assert access(wenv, course, learner.address) == (True, 2)
    (job,) = [j for j in wenv.jobs() if j.topic == "access.chain_revoke"]
    assert job.result and job.result["outcome"] == "not_this_record"


# ---------------------------------------------------------------------- receipts


def test_receipt_is_sent_once(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    wenv.user(learner.address, "once@example.com")
    order_id = wenv.paid_card_order(learner.address, wenv.deployed.courses[4])
    for _ in range(3):
        run(order_tasks.send_receipt, order_id=order_id, kind="paid")
    assert len(wenv.mail_files()) == 1
    assert wenv.count(SentReceipt) == 1
    body = wenv.mail_files()[0].read_text()
    assert "49.00 EUR" in body and order_id in body


def test_receipt_without_email_is_skipped_once(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    order_id = wenv.paid_card_order(learner.address, wenv.deployed.courses[4], receipt=False)
    assert run(order_tasks.send_receipt, order_id=order_id)["outcome"] == "skipped_no_email"
    assert run(order_tasks.send_receipt, order_id=order_id)["outcome"] == "already_skipped"
    assert wenv.mail_files() == []


# ---------------------------------------------------------------------- outbox and jobs


def test_relay_routes_bad_messages_aside(wenv: WorkerEnv) -> None:
    with session_scope(wenv.factory) as s:
        enqueue(s, "no.such.topic", {"x": 1})
        enqueue(s, "email.receipt", {"kind": "paid"})  # no order id
    assert relay() == 0
    with session_scope(wenv.factory) as s:
        messages = s.scalars(select(OutboxMessage)).all()
        assert all(m.published_at is None and m.attempts == 1 for m in messages)
        assert all(m.available_at > utcnow() for m in messages)
        assert all(m.last_error for m in messages)


def test_relay_crash_before_commit_publishes_again(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    wenv.paid_card_order(learner.address, wenv.deployed.courses[5], receipt=False)
    published: list[str] = []

    def failing(task: str, kwargs: dict[str, Any]) -> None:
        published.append(task)
        raise ConnectionError("broker went away")

    with pytest.raises(ConnectionError):
        relay_once(wenv.factory, failing)
    assert wenv.unpublished() == 1 and wenv.jobs() == []  # rolled back: nothing lost

    relay_once(wenv.factory, lambda task, kwargs: published.append(task))
    assert published == ["tuition.record_access_grant"] * 2  # at most twice
    assert wenv.unpublished() == 0
    assert relay_once(wenv.factory, lambda task, kwargs: published.append(task)) == 0


def test_resume_stalled_republishes_lost_jobs(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    course = wenv.deployed.courses[5]
    wenv.paid_card_order(learner.address, course, receipt=False)
    relay_once(wenv.factory, lambda task, kwargs: None)  # "published", then lost by the broker
    (job,) = wenv.jobs()
    assert job.status == JobStatus.QUEUED
    assert run(tasks.resume_stalled) == 0  # not stalled yet
    with session_scope(wenv.factory) as s:
        s.execute(update(WorkerJob).values(updated_at=utcnow() - timedelta(hours=1)))
    assert run(tasks.resume_stalled) == 1
    (job,) = wenv.jobs()
    assert job.status == JobStatus.DONE and job.enqueues == 2
    assert access(wenv, course, learner.address)[0]


def beat(wenv: WorkerEnv, process: str, seconds_ago: float) -> None:
    """Record a heartbeat of `process` as of `seconds_ago` seconds."""
    when = utcnow() - timedelta(seconds=seconds_ago)
    with session_scope(wenv.factory) as s:
        s.merge(WorkerProcess(process=process, started_at=when, seen_at=when))


@pytest.fixture
def running_job(wenv: WorkerEnv, anvil: Anvil) -> tuple[int, str, int]:
    """A card grant's job marked running by "worker-1@host:4242" 30 s ago (well within
    `stalled_after`), as a worker that then died leaves it: (job id, learner, course)."""
    learner = new_learner(anvil)
    course = wenv.deployed.courses[5]
    wenv.paid_card_order(learner.address, course, receipt=False)
    relay_once(wenv.factory, lambda task, kwargs: None)  # taken by a worker that then died
    (job,) = wenv.jobs()
    with session_scope(wenv.factory) as s:
        s.execute(
            update(WorkerJob).values(
                status=JobStatus.RUNNING,
                claimed_by="worker-1@host:4242",
                updated_at=utcnow() - timedelta(seconds=30),
            )
        )
    return job.id, learner.address, course


def test_a_killed_workers_running_job_is_resumed_without_waiting_for_stalled_after(
    wenv: WorkerEnv, running_job: tuple[int, str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, learner, course = running_job
    monkeypatch.setattr(tasks, "time", SimpleNamespace(sleep=lambda seconds: None))
    # No worker process ever beat (nothing can be concluded), then the claimant beats.
    assert run(tasks.resume_stalled) == 0
    beat(wenv, "worker-1@host:4242", 1)
    beat(wenv, "worker-2@host:77", 1)
    assert run(tasks.resume_stalled) == 0
    # Every process silent for a minute, together: the database was down, nobody died.
    beat(wenv, "worker-1@host:4242", 60)
    beat(wenv, "worker-2@host:77", 60)
    assert run(tasks.resume_stalled) == 0
    # The others beat again and the claimant stays silent: re-published at once.
    beat(wenv, "worker-2@host:77", 0)
    assert run(tasks.resume_stalled) == 1
    (job,) = wenv.jobs()
    assert job.id == job_id and job.status == JobStatus.DONE and job.enqueues == 2
    assert access(wenv, course, learner)[0]


def test_a_claimant_that_beats_again_within_two_intervals_keeps_its_job(
    wenv: WorkerEnv, running_job: tuple[int, str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Right after a database outage one process has beaten and the claimant not yet.
    beat(wenv, "worker-1@host:4242", 60)
    beat(wenv, "worker-2@host:77", 0)
    waited: list[float] = []

    def claimant_beats_meanwhile(seconds: float) -> None:
        waited.append(seconds)
        beat(wenv, "worker-1@host:4242", 0)

    monkeypatch.setattr(tasks, "time", SimpleNamespace(sleep=claimant_beats_meanwhile))
    assert run(tasks.resume_stalled) == 0
    assert waited == [2 * get_settings().worker.heartbeat_interval]
    (job,) = wenv.jobs()
    assert job.status == JobStatus.RUNNING and job.enqueues == 1


def test_a_queued_job_held_by_a_killed_workers_main_process_is_resumed(
    wenv: WorkerEnv, running_job: tuple[int, str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, learner, course = running_job
    monkeypatch.setattr(tasks, "time", SimpleNamespace(sleep=lambda seconds: None))
    with session_scope(wenv.factory) as s:
        s.execute(update(WorkerJob).values(status=JobStatus.QUEUED, claimed_by=None))
    # The main process that received its message (prefetched) records it from its heartbeat.
    heartbeat = Heartbeat("worker-1@host:4000", interval=60, factory=lambda: wenv.factory)
    heartbeat.claim(job_id)
    heartbeat.write_claims()
    (job,) = wenv.jobs()
    assert job.claimed_by == "worker-1@host:4000" and job.status == JobStatus.QUEUED
    beat(wenv, "worker-1@host:4000", 1)
    with session_scope(wenv.factory) as s:
        s.execute(update(WorkerJob).values(updated_at=utcnow() - timedelta(seconds=30)))
    assert run(tasks.resume_stalled) == 0  # its holder lives: the message is on its way
    # Killed before a pool process started it; the broker would return the message only after
    # its visibility timeout (an hour).
    beat(wenv, "worker-1@host:4000", 60)
    beat(wenv, "worker-2@host:77", 0)
    assert run(tasks.resume_stalled) == 1
    (job,) = wenv.jobs()
    assert job.status == JobStatus.DONE and job.enqueues == 2
    assert access(wenv, course, learner)[0]


def test_a_claim_waits_for_its_job_row_to_be_committed(wenv: WorkerEnv) -> None:
    heartbeat = Heartbeat("worker-1@host:4000", interval=60, factory=lambda: wenv.factory)
    heartbeat.claim(10**9)  # not written yet: kept
    heartbeat.write_claims()
    assert heartbeat._claims == {10**9: pytest.approx(time.monotonic(), abs=5)}


def test_a_task_that_starts_before_its_enqueuer_commits_still_marks_its_job(
    wenv: WorkerEnv,
) -> None:
    # The relay publishes inside its transaction: a fast worker starts before the commit.
    inserted: list[int] = []
    seen = threading.Event()

    def relay_slowly() -> None:
        with session_scope(wenv.factory) as s:
            job, _ = upsert_job(s, topic="test", ref="slow", task="tuition.ping", payload={})
            s.flush()
            inserted.append(job.id)
            seen.set()
            time.sleep(0.5)  # "publishing" the rest of its batch

    relay = threading.Thread(target=relay_slowly)
    relay.start()
    assert seen.wait(10)
    jobs.mark(wenv.factory, inserted[0], JobStatus.RUNNING, claimed_by="worker-1@host:1")
    relay.join()
    (job,) = [j for j in wenv.jobs() if j.ref == "slow"]
    assert job.status == JobStatus.RUNNING and job.runs == 1


def test_a_lost_database_connection_is_retried_not_failed(
    wenv: WorkerEnv, anvil: Anvil, monkeypatch: pytest.MonkeyPatch
) -> None:
    learner = new_learner(anvil)
    course = wenv.deployed.courses[5]
    wenv.paid_card_order(learner.address, course, receipt=False)
    relay_once(wenv.factory, lambda task, kwargs: None)
    (job,) = wenv.jobs()
    original = access_tasks.send_on_chain
    calls: list[int] = []

    def restart_then_run(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # PostgreSQL restarted under the first run
            raise OperationalError("UPDATE ...", {}, Exception("terminating connection"))
        return original(*args, **kwargs)

    monkeypatch.setattr(access_tasks, "send_on_chain", restart_then_run)
    task = tasks.app.tasks[job.task]
    with pytest.raises(Retry):  # eager mode surfaces the retry a worker would schedule
        task.apply(kwargs={**job.payload, "job_id": job.id}).get()
    (job,) = wenv.jobs()
    assert job.status == JobStatus.RUNNING  # not failed: retried
    assert job.due_at is not None and job.due_at <= utcnow() + timedelta(seconds=10)
    task.apply(kwargs={**job.payload, "job_id": job.id}).get()  # the retry's delivery
    assert len(calls) == 2
    (job,) = wenv.jobs()
    assert job.status == JobStatus.DONE
    assert access(wenv, course, learner.address)[0]


def test_a_retry_dropped_by_its_worker_is_republished_once_overdue(
    wenv: WorkerEnv, running_job: tuple[int, str, int]
) -> None:
    job_id, learner, course = running_job
    # Its claimant lives (beats), and a retry is due in a while: nothing to do.
    beat(wenv, "worker-1@host:4242", 0)
    jobs.note_due(wenv.factory, job_id, utcnow() + timedelta(seconds=30))
    assert run(tasks.resume_stalled) == 0
    # The retry was due long ago and never ran (dropped with a broker connection that reset).
    late = get_settings().worker.late_after
    jobs.note_due(wenv.factory, job_id, utcnow() - timedelta(seconds=late + 5))
    assert run(tasks.resume_stalled) == 1
    (job,) = wenv.jobs()
    assert job.status == JobStatus.DONE and job.enqueues == 2 and job.due_at is None
    assert access(wenv, course, learner)[0]


def test_heartbeat_writes_its_row_until_stopped_then_removes_it(wenv: WorkerEnv) -> None:
    def seen() -> datetime | None:
        with session_scope(wenv.factory) as s:
            row = s.get(WorkerProcess, "worker-9@host:1")
            return row.seen_at if row else None

    heartbeat = Heartbeat("worker-9@host:1", interval=0.05, factory=lambda: wenv.factory)
    heartbeat.start()
    try:
        first = wait_for(seen, timeout=10, what="first heartbeat")
        wait_for(lambda: (seen() or first) > first, timeout=10, what="a later heartbeat")
    finally:
        heartbeat.stop()
    assert seen() is None


def test_old_heartbeats_are_pruned(wenv: WorkerEnv) -> None:
    beat(wenv, "worker-1@host:1", tasks.PROCESS_MEMORY + 60)
    beat(wenv, "worker-1@host:2", 5)
    run(tasks.resume_stalled)
    assert wenv.count(WorkerProcess) == 1


def test_a_running_job_names_the_process_running_it(wenv: WorkerEnv, anvil: Anvil) -> None:
    learner = new_learner(anvil)
    course = wenv.deployed.courses[5]
    wenv.paid_card_order(learner.address, course, receipt=False)
    relay_once(wenv.factory, lambda task, kwargs: None)
    (job,) = wenv.jobs()
    seen: list[str | None] = []

    def peek(*args: object, **kwargs: object) -> dict[str, str]:
        with session_scope(wenv.factory) as s:
            seen.append(s.get(WorkerJob, job.id).claimed_by)  # type: ignore[union-attr]
        return {"outcome": "peeked"}

    task = tasks.app.tasks[job.task]
    original = task.run
    task.run = peek
    try:
        task.apply(kwargs={**job.payload, "job_id": job.id})
    finally:
        task.run = original
    (claim,) = seen
    assert claim is not None and claim.endswith(f":{os.getpid()}")


# ---------------------------------------------------------------------- reconciliation


def test_reconcile_detects_and_fixes_drift(own_wenv: WorkerEnv, anvil: Anvil) -> None:
    wenv = own_wenv
    learner = new_learner(anvil)
    course = wenv.deployed.courses[1]
    order_id = wenv.paid_card_order(learner.address, course, receipt=False)
    # The grant message is lost (marked published, never run): the chain misses the grant.
    with session_scope(wenv.factory) as s:
        s.execute(update(OutboxMessage).values(published_at=utcnow()))
    assert not access(wenv, course, learner.address)[0]

    summary = run(access_tasks.reconcile_access)
    assert summary["drift"] == 1 and summary["fixes"] == 1
    assert access(wenv, course, learner.address) == (True, 2)
    with session_scope(wenv.factory) as s:
        (drift,) = s.scalars(select(ReconcileDrift)).all()
        assert (drift.kind, drift.action) == ("missing_on_chain", "enqueued_grant")
        assert drift.db_active and not drift.chain_access
        audits = s.scalars(select(AuditEntry).where(AuditEntry.action == "reconcile.drift")).all()
        assert len(audits) == 1 and audits[0].reason == "missing_on_chain"

    assert run(access_tasks.reconcile_access)["drift"] == 0  # in agreement now

    # The refund's revoke is lost: the chain still grants access the DB took away.
    wenv.refund_card_order(order_id, receipt=False)
    with session_scope(wenv.factory) as s:
        s.execute(update(OutboxMessage).values(published_at=utcnow()))
    summary = run(access_tasks.reconcile_access)
    assert summary["drift"] == 1 and summary["fixes"] == 1
    assert access(wenv, course, learner.address) == (False, 0)
    assert run(access_tasks.reconcile_access)["drift"] == 0
    assert wenv.count(WorkerTransaction) == 2


def test_reconcile_reports_what_it_cannot_fix(own_wenv: WorkerEnv, anvil: Anvil) -> None:
    from backend.access.service import grant_access

    wenv = own_wenv
    learner = new_learner(anvil)
    course_id = wenv.course(wenv.deployed.courses[2])
    with session_scope(wenv.factory) as s:
        grant_access(
            s,
            address=learner.address,
            course_id=course_id,
            source="crypto",
            order_id=None,
            actor="test",
            reason="indexed purchase",
            on_chain=True,
            chain_id=wenv.deployed.anvil.chain_id,
        )
    summary = run(access_tasks.reconcile_access)
    assert summary["drift"] == 1 and summary["fixes"] == 0
    with session_scope(wenv.factory) as s:
        (drift,) = s.scalars(select(ReconcileDrift)).all()
        assert (drift.kind, drift.action) == ("missing_on_chain", "reported")
    assert wenv.transactions() == []


def test_reconcile_repairs_drift_both_ways_then_finds_none(
    own_wenv: WorkerEnv, anvil: Anvil
) -> None:
    """Every source in the database, drift seeded in both directions: one run fixes what the
    database decided, the printed command fixes what only the chain knew, then zero drift."""
    from support.market import ADMIN

    from backend.access.models import Entitlement
    from backend.access.reconcile import adopt_chain_access
    from backend.access.service import grant_access
    from backend.worker.chain import get_chain

    wenv = own_wenv
    c1, c2, c3 = wenv.deployed.courses
    card_learner, free_learner, granted, outsider, in_sync = (new_learner(anvil) for _ in range(5))
    wenv.paid_card_order(card_learner.address, c1, receipt=False)
    with session_scope(wenv.factory) as s:
        for learner, source in ((free_learner, "free"), (granted, "grant")):
            grant_access(
                s,
                address=learner.address,
                course_id=wenv.course(c2),
                source=source,
                order_id=None,
                actor="test",
                reason="seeded",
                on_chain=False,
            )
    # Every message is lost: three database grants missing on-chain.
    with session_scope(wenv.factory) as s:
        s.execute(update(OutboxMessage).values(published_at=utcnow()))
    wenv.enrol(in_sync.address, c3)  # agreement: no drift
    # A grant sent with an operator key outside the product: on-chain only.
    transact(
        wenv.deployed.w3,
        wenv.deployed.market.functions.grantAccess(c3, outsider.address, 3, b"\x09" * 32),
        ADMIN,
    )

    summary = run(access_tasks.reconcile_access)
    assert (summary["drift"], summary["fixes"], summary["chain_only"]) == (4, 3, 1)
    for learner, course, source in (
        (card_learner, c1, 2),
        (free_learner, c2, 3),
        (granted, c2, 3),
    ):
        assert access(wenv, course, learner.address) == (True, source)
    with session_scope(wenv.factory) as s:
        statuses = s.scalars(select(Entitlement.chain_status)).all()
        assert set(statuses) == {"recorded"}
        (chain_only,) = s.scalars(
            select(ReconcileDrift).where(ReconcileDrift.kind == "chain_only")
        ).all()
    assert chain_only.learner == outsider.address and chain_only.action == "reported"
    fix = chain_only.detail["fix"]
    assert fix == f"tuition access adopt {c3} {outsider.address}"

    # The printed fix: the database records the chain's access.
    adopted = adopt_chain_access(c3, outsider.address, factory=wenv.factory, chain=get_chain())
    assert adopted["source"] == "grant"
    sent = wenv.count(WorkerTransaction)
    for _ in range(2):
        again = run(access_tasks.reconcile_access)
        assert (again["drift"], again["fixes"], again["chain_only"]) == (0, 0, 0)
    assert wenv.count(WorkerTransaction) == sent  # the second and third runs changed nothing


# ---------------------------------------------------------------------- one path to the chain


@pytest.mark.parametrize("source", ["free", "grant"])
def test_api_grants_and_revokes_end_on_chain(wenv: WorkerEnv, anvil: Anvil, source: str) -> None:
    """A free claim or an admin grant: the database answers at once, the chain follows."""
    from backend.access.models import Entitlement
    from backend.access.service import grant_access, revoke_access

    learner = new_learner(anvil)
    course = wenv.deployed.courses[4]
    with session_scope(wenv.factory) as s:
        ent = grant_access(
            s,
            address=learner.address,
            course_id=wenv.course(course),
            source=source,
            order_id=None,
            actor="test",
            reason="claimed",
            on_chain=False,
        )
        assert ent.chain_status == "pending"
        entitlement_id = ent.id
    assert not access(wenv, course, learner.address)[0]
    relay()
    assert access(wenv, course, learner.address) == (True, 3)  # AccessSource.Grant
    with session_scope(wenv.factory) as s:
        ent = s.get(Entitlement, entitlement_id)
        assert ent is not None and ent.chain_status == "recorded" and ent.chain_tx_hash
        ref = ent.chain_ref
    record = wenv.deployed.market.functions.accessOf(course, learner.address).call()
    assert ref is not None and record[3] == bytes.fromhex(ref[2:])[:21], "ref ties chain to row"

    with session_scope(wenv.factory) as s:
        revoke_access(
            s,
            address=learner.address,
            course_id=wenv.course(course),
            order_id=None,
            actor="test",
            reason="support case",
            on_chain=False,
        )
    relay()
    assert access(wenv, course, learner.address) == (False, 0)
    with session_scope(wenv.factory) as s:
        ent = s.get(Entitlement, entitlement_id)
        assert ent is not None and ent.chain_status == "revoked"
    assert run(access_tasks.record_access_revoke, entitlement_id=entitlement_id)["outcome"] == (
        "already_revoked"
    )
    assert len(wenv.transactions()) == 2


def test_failed_grant_is_shown_on_the_entitlement(wenv: WorkerEnv, anvil: Anvil) -> None:
    from backend.access.models import Entitlement
    from backend.core.errors import TxWouldRevertError

    learner = new_learner(anvil)
    course = wenv.deployed.courses[5]
    order_id = wenv.paid_card_order(learner.address, course, receipt=False)
    entitlement_id = wenv.entitlement_of(order_id)
    market = wenv.deployed.market
    from support.market import ADMIN

    # The market is paused: grantAccess reverts, and the row says so.
    transact(
        wenv.deployed.w3,
        market.functions.grantRole(market.functions.GUARDIAN_ROLE().call(), ADMIN.address),
        ADMIN,
    )
    transact(wenv.deployed.w3, market.functions.pause(), ADMIN)
    try:
        with pytest.raises(TxWouldRevertError):
            run(access_tasks.record_access_grant, entitlement_id=entitlement_id)
    finally:
        transact(wenv.deployed.w3, market.functions.unpause(), ADMIN)
    with session_scope(wenv.factory) as s:
        ent = s.get(Entitlement, entitlement_id)
        assert ent is not None and ent.chain_status == "failed" and ent.chain_error
    assert (
        run(access_tasks.record_access_grant, entitlement_id=entitlement_id)["outcome"] == "granted"
    )
    with session_scope(wenv.factory) as s:
        ent = s.get(Entitlement, entitlement_id)
        assert ent is not None and ent.chain_status == "recorded" and ent.chain_error is None


def test_certificate_waits_for_the_grant_on_chain(wenv: WorkerEnv, anvil: Anvil) -> None:
    """Completed right after a free claim: the mint waits for grantAccess instead of failing."""
    from backend.access.service import grant_access
    from backend.certificates.issuance import issue_certificate
    from backend.core.config import get_settings
    from backend.core.errors import PermanentError, RetryableError
    from backend.worker.chain import get_chain
    from backend.worker.runtime import get_sender

    learner, stranger = new_learner(anvil), new_learner(anvil)
    course = wenv.deployed.courses[3]

    def issue(cert_id: int) -> dict[str, Any]:
        return issue_certificate(
            cert_id,
            factory=wenv.factory,
            chain=get_chain(),
            sender=get_sender(),
            settings=get_settings().worker,
        )

    with session_scope(wenv.factory) as s:
        grant_access(
            s,
            address=learner.address,
            course_id=wenv.course(course),
            source="free",
            order_id=None,
            actor="test",
            reason="claimed",
            on_chain=False,
        )
    cert_id = wenv.request_certificate(learner.address, course, enrol=False)
    with pytest.raises(RetryableError, match="not on-chain yet"):
        issue(cert_id)
    run(tasks.relay_outbox)  # the grant (and the certificate message, retried until it mints)
    assert access(wenv, course, learner.address)[0]
    assert issue(cert_id)["outcome"] in ("minted", "already_final", "already_on_chain")
    assert wenv.certificate(cert_id).status == CertificateStatus.MINTED

    # Access lost after the request (on neither side now): the certificate is never sent.
    from backend.access.service import revoke_access

    with session_scope(wenv.factory) as s:
        grant_access(
            s,
            address=stranger.address,
            course_id=wenv.course(course),
            source="grant",
            order_id=None,
            actor="test",
            reason="briefly",
            on_chain=True,
            chain_id=wenv.deployed.anvil.chain_id,
        )
    stranger_cert = wenv.request_certificate(stranger.address, course, enrol=False)
    with session_scope(wenv.factory) as s:
        revoke_access(
            s,
            address=stranger.address,
            course_id=wenv.course(course),
            order_id=None,
            actor="test",
            reason="ended",
            on_chain=True,
        )
    with pytest.raises(PermanentError, match="no access"):
        issue(stranger_cert)
    assert wenv.deployed.certificate.functions.balanceOf(stranger.address).call() == 0


def test_card_refund_revokes_the_minted_certificate(wenv: WorkerEnv, anvil: Anvil) -> None:
    from backend.certificates.models import RevokeReason

    learner = new_learner(anvil)
    course = wenv.deployed.courses[0]
    order_id = wenv.paid_card_order(learner.address, course, receipt=False)
    relay()
    cert_id = wenv.request_certificate(learner.address, course, enrol=False)
    relay()
    assert wenv.certificate(cert_id).status == CertificateStatus.MINTED

    wenv.refund_card_order(order_id, receipt=False, certificate_reason=RevokeReason.REFUNDED)
    cert = wenv.certificate(cert_id)
    assert cert.revoke_reason_code == 5 and cert.revoke_requested_at is not None
    relay()
    assert access(wenv, course, learner.address) == (False, 0)
    token_id = token_id_for(course, learner.address)
    facts = wenv.deployed.certificate.functions.verify(token_id).call()
    onchain = dict(zip(CERTIFICATE_FIELDS, facts, strict=True))
    assert (onchain["holder"], onchain["revoked"], onchain["revokeReason"]) == (
        learner.address,
        True,
        5,
    ), "revoked, kept"
    assert (
        run(certificate_tasks.revoke_certificate, certificate_id=cert_id)["outcome"]
        == "already_revoked"
    )
    assert len(wenv.transactions("revoke:")) == 2  # the access and the certificate
