"""`worker_jobs`: what was handed to Celery, so lost messages can be re-sent.

Enqueuers write the job in their DB transaction and publish the Celery message (the outbox relay
before its commit, others right after); tasks mark their job running, done or failed through the
`TuitionTask` hooks; `resume_stalled` re-publishes open jobs nobody touched for a while.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import session_scope, utcnow
from backend.worker.models import JobStatus, WorkerJob

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
    """Count one more publication of `job`."""
    job.enqueues += 1
    job.updated_at = utcnow()


def mark(factory: sessionmaker[Session], job_id: int, status: str, **values: Any) -> None:
    """Move `job_id` to `status` (never out of done/failed into running)."""
    now = utcnow()
    with session_scope(factory) as s:
        stmt = update(WorkerJob).where(WorkerJob.id == job_id)
        if status == JobStatus.RUNNING:
            stmt = stmt.where(WorkerJob.status.in_(JobStatus.OPEN)).values(runs=WorkerJob.runs + 1)
        if status in (JobStatus.DONE, JobStatus.FAILED):
            values.setdefault("done_at", now)
        s.execute(stmt.values(status=status, updated_at=now, **values))


def note_error(factory: sessionmaker[Session], job_id: int, error: str) -> None:
    """Remember the last error of a job that will be retried."""
    with session_scope(factory) as s:
        s.execute(
            update(WorkerJob)
            .where(WorkerJob.id == job_id)
            .values(last_error=error[:2000], updated_at=utcnow())
        )


def orphaned(
    session: Session, live: set[str], older_than: float, limit: int = 100
) -> list[WorkerJob]:
    """Running jobs claimed by a process not in `live` ("<node>:<pid>" of every process the
    workers report), untouched for `older_than` seconds; row-locked like `stalled`."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    return list(
        session.scalars(
            select(WorkerJob)
            .where(
                WorkerJob.status == JobStatus.RUNNING,
                WorkerJob.claimed_by.is_not(None),
                WorkerJob.claimed_by.not_in(live),
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
