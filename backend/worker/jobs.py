"""`worker_jobs`: what was handed to Celery, so lost messages can be re-sent.

Enqueuers write the job in their DB transaction and publish the Celery message (the outbox relay
before its commit, others right after); tasks mark their job running, done or failed through the
`TuitionTask` hooks; `resume_stalled` re-publishes open jobs nobody touched for a while.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import session_scope, utcnow
from backend.worker.models import JobStatus, WorkerJob, WorkerProcess

log = logging.getLogger(__name__)


def upsert_job(
    session: Session, *, topic: str, ref: str, task: str, payload: dict[str, Any]
) -> tuple[WorkerJob, bool]:
    """The job of (topic, ref), created queued if new; re-opened if it had finished.

    Returns the job and whether it must be published (new, or re-opened).
    """
    values = {
        "topic": topic,
        "ref": ref,
        "task": task,
        "payload": payload,
        "status": JobStatus.QUEUED,
        "runs": 0,
        "enqueues": 0,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(WorkerJob)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["topic", "ref"])
        .returning(WorkerJob.id)
    )
    # RETURNING rather than rowcount, which ORM-enabled inserts do not report reliably.
    created = session.execute(stmt).scalar() is not None
    job = session.scalars(
        select(WorkerJob).where(WorkerJob.topic == topic, WorkerJob.ref == ref)
    ).one()
    if created:
        return job, True
    if job.status in JobStatus.OPEN:
        return job, False  # already on its way
    job.status = JobStatus.QUEUED
    job.task = task
    job.payload = payload
    job.last_error = None
    job.done_at = None
    return job, True


def mark_enqueued(session: Session, job: WorkerJob) -> None:
    """Count one more publication of `job`, queued again and claimed by nobody yet."""
    job.enqueues += 1
    job.status = JobStatus.QUEUED
    job.claimed_by = None
    job.due_at = None
    job.updated_at = utcnow()


# How long a task waits for its job row to become visible: the relay publishes inside its
# transaction (a crash then publishes again rather than never), so a fast worker can start the
# task before the relay's commit.
ROW_WAIT = 3.0


def mark(factory: sessionmaker[Session], job_id: int, status: str, **values: Any) -> None:
    """Move `job_id` to `status` (never out of done/failed into running), waiting up to
    `ROW_WAIT` seconds for a row its enqueuer has not committed yet."""
    deadline = time.monotonic() + ROW_WAIT
    while True:
        now = utcnow()
        with session_scope(factory) as s:
            # Looked up first: a row seen here is seen by the update that follows (which, the
            # other way round, could miss a row committed between the two statements).
            if s.scalar(select(WorkerJob.id).where(WorkerJob.id == job_id)) is not None:
                stmt = update(WorkerJob).where(WorkerJob.id == job_id)
                if status == JobStatus.RUNNING:
                    stmt = stmt.where(WorkerJob.status.in_(JobStatus.OPEN)).values(
                        runs=WorkerJob.runs + 1, due_at=None
                    )
                if status in (JobStatus.DONE, JobStatus.FAILED):
                    values.setdefault("done_at", now)
                s.execute(stmt.values(status=status, updated_at=now, **values))
                return
        if time.monotonic() > deadline:
            log.warning("job %s not found; not marked %s", job_id, status)
            return
        time.sleep(0.05)


def note_due(factory: sessionmaker[Session], job_id: int, due: datetime) -> None:
    """Record when `job_id`'s next message (a retry, a re-check) is due."""
    with session_scope(factory) as s:
        s.execute(
            update(WorkerJob)
            .where(WorkerJob.id == job_id, WorkerJob.status.in_(JobStatus.OPEN))
            .values(due_at=due, updated_at=utcnow())
        )


def overdue(session: Session, late_after: float, limit: int = 100) -> list[WorkerJob]:
    """Open jobs whose retry or re-check message is `late_after` seconds overdue (dropped);
    row-locked like `stalled`."""
    cutoff = utcnow() - timedelta(seconds=late_after)
    return list(
        session.scalars(
            select(WorkerJob)
            .where(WorkerJob.status.in_(JobStatus.OPEN), WorkerJob.due_at < cutoff)
            .order_by(WorkerJob.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def claim_received(factory: sessionmaker[Session], process: str, job_ids: set[int]) -> set[int]:
    """Name `process` (a worker's main process) as the holder of queued jobs whose message it
    received: if it dies before a pool process starts them, `resume_stalled` re-publishes them
    instead of waiting for the broker's visibility timeout. Returns the ids found."""
    with session_scope(factory) as s:
        found = set(s.scalars(select(WorkerJob.id).where(WorkerJob.id.in_(job_ids))))
        if found:
            s.execute(
                update(WorkerJob)
                .where(WorkerJob.id.in_(found), WorkerJob.status == JobStatus.QUEUED)
                .values(claimed_by=process, updated_at=utcnow())
            )
        return found


def note_error(factory: sessionmaker[Session], job_id: int, error: str) -> None:
    """Remember the last error of a job that will be retried."""
    with session_scope(factory) as s:
        s.execute(
            update(WorkerJob)
            .where(WorkerJob.id == job_id)
            .values(last_error=error[:2000], updated_at=utcnow())
        )


def heartbeat(factory: sessionmaker[Session], process: str) -> None:
    """Record that `process` ("<celery node>:<pid>") is alive now."""
    now = utcnow()
    with session_scope(factory) as s:
        # Only the process itself writes its row: update, else insert, never races with itself.
        found = s.execute(
            update(WorkerProcess).where(WorkerProcess.process == process).values(seen_at=now)
        )
        if not found.rowcount:  # type: ignore[attr-defined]
            s.add(WorkerProcess(process=process, started_at=now, seen_at=now))


def forget_process(factory: sessionmaker[Session], process: str) -> None:
    """Remove the heartbeat of a process that stops."""
    with session_scope(factory) as s:
        s.execute(delete(WorkerProcess).where(WorkerProcess.process == process))


def prune_processes(session: Session, older_than: float) -> int:
    """Forget processes silent for `older_than` seconds (their jobs were resumed long ago)."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    result = session.execute(delete(WorkerProcess).where(WorkerProcess.seen_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


def silence_cutoff(session: Session, silent_for: float) -> datetime | None:
    """The time before which a process's last heartbeat means it is gone; None if no process
    ever beat (nothing can be concluded).

    Measured from the freshest heartbeat, not only from now: when the database was down every
    process fell silent at once, and none of them is dead for that.
    """
    freshest = session.scalar(select(func.max(WorkerProcess.seen_at)))
    if freshest is None:
        return None
    return min(utcnow(), freshest) - timedelta(seconds=silent_for)


def orphaned(session: Session, silent_for: float, limit: int = 100) -> list[WorkerJob]:
    """Open jobs, untouched for `silent_for` seconds, whose claimant (the pool process running
    one, or the main process holding its message) has not beaten for that long (see
    `silence_cutoff`); row-locked like `stalled`."""
    cutoff = silence_cutoff(session, silent_for)
    if cutoff is None:
        return []
    alive = select(WorkerProcess.process).where(WorkerProcess.seen_at >= cutoff)
    return list(
        session.scalars(
            select(WorkerJob)
            .where(
                WorkerJob.status.in_(JobStatus.OPEN),
                WorkerJob.claimed_by.is_not(None),
                WorkerJob.claimed_by.not_in(alive),
                WorkerJob.updated_at < cutoff,
            )
            .order_by(WorkerJob.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def stalled(session: Session, older_than: float, limit: int = 100) -> list[WorkerJob]:
    """Open jobs untouched for `older_than` seconds (row-locked, skipping locked, on PostgreSQL)."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    return list(
        session.scalars(
            select(WorkerJob)
            .where(WorkerJob.status.in_(JobStatus.OPEN), WorkerJob.updated_at < cutoff)
            .order_by(WorkerJob.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
