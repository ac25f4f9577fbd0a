"""The worker's task base, its publisher and its infrastructure tasks (outbox relay, transaction
recovery, stalled jobs, ping). Domain tasks live beside their services (`backend/<domain>/
tasks.py`, listed in `celery_app.TASK_MODULES`) and build on `TuitionTask` and `until_mined`.
Each takes ids, opens its own sessions, and is safe to run twice.

Retry policy: `RetryableError` (RPC down, node lagging, a lost race) and a lost database connection
are retried with exponential back-off and full jitter; a transaction that is broadcast but not yet
mined is re-checked every few seconds without limit and without counting as a retry (the sender's
`recover` re-prices or re-sends it meanwhile); `PermanentError` fails the job at once. Every task
run through the outbox carries a `job_id`, whose `worker_jobs` row the hooks below keep up to date.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from celery.exceptions import Ignore
from sqlalchemy.exc import InterfaceError, OperationalError

from backend.core.config import get_settings
from backend.core.db import process_session_factory, session_scope, utcnow
from backend.core.errors import (
    NotDeployedError,
    OtherChainError,
    RetryableError,
    TxNotMinedError,
)
from backend.worker import jobs, metrics
from backend.worker.celery_app import app
from backend.worker.chain import Chain, configured_chain_ids, get_chain
from backend.worker.models import JobStatus
from backend.worker.runtime import get_sender

log = logging.getLogger(__name__)

PENDING_RECHECK = 5  # seconds between checks of a broadcast transaction without a receipt
# Heartbeats of processes silent this long are deleted (their jobs were resumed long before).
PROCESS_MEMORY = 24 * 3600


class TuitionTask(Task):
    """Base task: at-least-once delivery, retries with back-off, `worker_jobs` bookkeeping."""

    acks_late = True
    reject_on_worker_lost = True
    # A database that restarts or drops the connection is as passing as an RPC outage.
    autoretry_for = (RetryableError, OperationalError, InterfaceError)
    retry_backoff = 2
    retry_backoff_max = get_settings().worker.retry_backoff_max
    retry_jitter = True
    # With the back-off capped at `retry_backoff_max` (5 min), about four hours of trying.
    max_retries = 50

    def _job(self, kwargs: dict[str, Any] | None, status: str, **values: Any) -> None:
        job_id = (kwargs or {}).get("job_id")
        if not job_id:
            return
        try:
            jobs.mark(process_session_factory(), int(job_id), status, **values)
        except Exception:  # bookkeeping must never decide a task's fate
            log.exception("could not mark job %s %s", job_id, status)

    def before_start(self, task_id: str, args: Any, kwargs: dict[str, Any]) -> None:
        """Mark the job running, claimed by this process."""
        self._job(kwargs, JobStatus.RUNNING, claimed_by=f"{self.request.hostname}:{os.getpid()}")

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """Schedule the retry (Celery's), noting in the job when it is due."""
        eta, countdown = kwargs.get("eta"), kwargs.get("countdown")
        if countdown is None:  # 0 (full jitter) means now
            countdown = self.default_retry_delay or 0
        due = eta or utcnow() + timedelta(seconds=countdown)
        note_due(self, due)
        return super().retry(*args, **kwargs)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: dict[str, Any]) -> None:
        """Mark the job done with the task's summary."""
        metrics.TASKS.labels(task=self.name, outcome="succeeded").inc()
        result = retval if isinstance(retval, dict) else {"result": repr(retval)}
        self._job(kwargs, JobStatus.DONE, result=result, last_error=None)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Mark the job failed (retries exhausted, or a permanent error)."""
        metrics.TASKS.labels(task=self.name, outcome="failed").inc()
        log.error("task %s[%s] failed: %s", self.name, task_id, exc)
        self._job(kwargs, JobStatus.FAILED, last_error=f"{type(exc).__name__}: {exc}"[:2000])

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: dict[str, Any], einfo: Any
    ) -> None:
        """Count the retry and remember why."""
        metrics.TASKS.labels(task=self.name, outcome="retried").inc()
        job_id = (kwargs or {}).get("job_id")
        if job_id:
            try:
                jobs.note_error(
                    process_session_factory(), int(job_id), f"{type(exc).__name__}: {exc}"
                )
            except Exception:
                log.exception("could not note the error of job %s", job_id)


def publish(task_name: str, kwargs: dict[str, Any]) -> None:
    """Send `task_name(**kwargs)` to the broker (or run it inline in eager mode)."""
    if task_name not in app.tasks:
        # A process that has not loaded the domains' task modules yet (a worker has).
        app.loader.import_default_modules()
    app.tasks[task_name].apply_async(kwargs=kwargs)


def until_mined(task: Task, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a task body that sends a transaction; a transaction not mined yet is checked again
    shortly (without counting as a retry) instead of failing the run."""
    try:
        return body()
    except TxNotMinedError as exc:
        # Waiting for a block is not a failure: a fresh message (its retry count back at zero)
        # checks again shortly, and this run ends without settling the job.
        log.info("%s: %s; checking again in %d s", task.name, exc, PENDING_RECHECK)
        note_due(task, utcnow() + timedelta(seconds=PENDING_RECHECK))
        task.apply_async(kwargs=task.request.kwargs, countdown=PENDING_RECHECK)
        raise Ignore() from exc


def note_due(task: Task, due: datetime) -> None:
    """Record in the task's job when its next message is due (see `resume_stalled`)."""
    job_id = (task.request.kwargs or {}).get("job_id")
    if not job_id:
        return
    try:
        jobs.note_due(process_session_factory(), int(job_id), due)
    except Exception:  # bookkeeping must never decide a task's fate
        log.exception("could not note when job %s is due", job_id)


def send_on_chain(
    task: Task, body: Callable[..., dict[str, Any]], row_id: int, **extra: Any
) -> dict[str, Any]:
    """Run a task body that writes to the chain for one row (`body(row_id, factory=, chain=,
    sender=, **extra)`) with this process's sessions, `until_mined`.

    The body starts on TUITION_NETWORK's chain; a row that lives on another configured chain
    (`OtherChainError`) is run again with that chain's client and sender, so each chain's
    transactions come from its own nonce stream.
    """
    chain = get_chain()
    try:
        return until_mined(task, lambda: _body_on(chain, body, row_id, **extra))
    except OtherChainError as exc:
        other = get_chain(chain_id=exc.chain_id)
        return until_mined(task, lambda: _body_on(other, body, row_id, **extra))


def _body_on(
    chain: Chain, body: Callable[..., dict[str, Any]], row_id: int, **extra: Any
) -> dict[str, Any]:
    return body(
        int(row_id),
        factory=process_session_factory(),
        chain=chain,
        sender=get_sender(chain),
        **extra,
    )


# ---------------------------------------------------------------------- periodic


@app.task(name="tuition.relay_outbox", ignore_result=True, acks_late=False)
def relay_outbox() -> int:
    """Publish available outbox messages (every second, from beat)."""
    from backend.worker.outbox import relay_once

    total = 0
    batch = get_settings().worker.outbox_batch
    # Drain a backlog in this run rather than one batch per beat tick.
    for _ in range(20):
        n = relay_once(
            process_session_factory(),
            publish,
            batch=batch,
            defer_publish=bool(app.conf.task_always_eager),
        )
        total += n
        if n < batch:
            break
    return total


@app.task(name="tuition.recover_transactions", ignore_result=True, acks_late=False)
def recover_transactions() -> dict[str, int]:
    """Settle, re-broadcast, re-price or re-nonce the operator key's live transactions, on each
    configured chain (each from its own nonce stream)."""
    totals: dict[str, int] = {}
    for chain_id in configured_chain_ids():
        try:
            sender = get_sender(get_chain(chain_id=chain_id))
            found = sender.recover()
        except NotDeployedError as exc:
            log.info("recover on chain %s: %s", chain_id, exc)
            continue
        for key, n in found.items():
            totals[key] = totals.get(key, 0) + n
        # What the "pending too long" and "nonce stuck" alerts watch.
        oldest = sender.oldest_in_flight()
        label = str(chain_id)
        metrics.TX_IN_FLIGHT.labels(chain=label).set(sender.in_flight())
        metrics.TX_OLDEST_IN_FLIGHT.labels(chain=label).set(
            (utcnow() - oldest).total_seconds() if oldest else 0
        )
    return totals


@app.task(name="tuition.resume_stalled", ignore_result=True, acks_late=False)
def resume_stalled() -> int:
    """Re-publish open jobs nobody touched for `stalled_after` seconds (lost messages), jobs
    whose retry message is `late_after` seconds overdue (dropped by a worker whose broker
    connection reset), and within seconds the open jobs of processes that stopped beating (a
    killed worker's)."""
    settings = get_settings().worker
    factory = process_session_factory()
    with session_scope(factory) as s:
        suspects = {job.id for job in jobs.orphaned(s, settings.orphan_grace)}
    if suspects:
        # A process that was merely cut off from the database beats again within an interval
        # of it coming back, and its jobs are not orphans: look again after two intervals.
        time.sleep(2 * settings.heartbeat_interval)
    again: list[tuple[str, dict[str, Any]]] = []
    with session_scope(factory) as s:
        found = jobs.stalled(s, settings.stalled_after)
        found += [job for job in jobs.overdue(s, settings.late_after) if job not in found]
        if suspects:
            seen = {job.id for job in found}
            found += [
                job
                for job in jobs.orphaned(s, settings.orphan_grace)
                if job.id in suspects and job.id not in seen
            ]
        for job in found:
            jobs.mark_enqueued(s, job)
            again.append((job.task, {**job.payload, "job_id": job.id}))
        jobs.prune_processes(s, PROCESS_MEMORY)
    for task_name, kwargs in again:
        log.warning("re-publishing stalled job %s: %s(%s)", kwargs["job_id"], task_name, kwargs)
        publish(task_name, kwargs)
    return len(again)


@app.task(name="tuition.ping", ignore_result=False, acks_late=False)
def ping() -> str:
    """Answer "pong" (`tuition worker-ping` on brokers without broadcast)."""
    return "pong"
