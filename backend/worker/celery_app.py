"""The Celery app: broker choice, reliability settings, the beat schedule.

Broker: Redis when `TUITION_REDIS_URL` is set (production, docker-compose); otherwise Kombu's
SQLAlchemy transport on `var/celery-broker.sqlite` with Celery's database result backend on
`var/celery-results.sqlite`, which needs no server. `TUITION_WORKER_BROKER_URL` /
`TUITION_WORKER_RESULT_BACKEND` override both.

Delivery is at least once: `acks_late` acknowledges a message only after its task returned, and
`task_reject_on_worker_lost` puts it back when the worker process dies mid-task. Redis re-delivers
unacknowledged messages after `visibility_timeout`; the SQLAlchemy transport cannot re-deliver a
message taken by a killed worker, which is why every job is also tracked in `worker_jobs` and
`resume_stalled` re-enqueues open jobs nobody touched for `stalled_after` seconds. Task bodies are
idempotent, so a duplicate delivery is only wasted work.
"""

from __future__ import annotations

import logging
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from celery.beat import Scheduler
from celery.signals import (
    celeryd_init,
    task_received,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from backend.core.config import Settings, get_settings

log = logging.getLogger(__name__)


def broker_urls(settings: Settings | None = None) -> tuple[str, str]:
    """The (broker URL, result backend URL) this process uses.

    Redis when `TUITION_REDIS_URL` is set; otherwise Kombu's SQLAlchemy transport on a SQLite file
    and Celery's database result backend on another, both under `var/`, so a fresh checkout runs
    the worker with no server at all.
    """
    settings = settings or get_settings()
    worker = settings.worker
    if settings.redis_url is not None:
        default_broker = default_backend = settings.redis_url.get_secret_value()
    else:
        state = worker.state_dir
        state.mkdir(parents=True, exist_ok=True)
        default_broker = f"sqla+sqlite:///{state / 'celery-broker.sqlite'}"
        default_backend = f"db+sqlite:///{state / 'celery-results.sqlite'}"
    broker = worker.broker_url.get_secret_value() if worker.broker_url else default_broker
    backend = worker.result_backend.get_secret_value() if worker.result_backend else default_backend
    return broker, backend


def _schedule() -> dict[str, dict[str, Any]]:
    w = get_settings().worker

    def entry(task: str, seconds: float) -> dict[str, Any]:
        # A tick nobody consumed in time is useless: the next one does the same work.
        return {
            "task": task,
            "schedule": timedelta(seconds=seconds),
            "options": {"expires": max(5.0, 3 * seconds)},
        }

    return {
        "outbox-relay": entry("tuition.relay_outbox", w.relay_interval),
        "recover-transactions": entry("tuition.recover_transactions", w.recover_interval),
        "resume-stalled": entry("tuition.resume_stalled", w.resume_interval),
        "reconcile-access": entry("tuition.reconcile_access", w.reconcile_interval),
        "stripe-sweep": entry("tuition.sweep_stripe_events", 60),
        "expire-orders": entry("tuition.expire_orders", 60),
        "expire-card-orders": entry("tuition.expire_card_orders", 60),
    }


def configure(app: Celery) -> None:
    """(Re)read settings into `app.conf` (tests call it after changing the environment)."""
    settings = get_settings()
    w = settings.worker
    broker, backend = broker_urls(settings)
    # Redis options only: the SQLAlchemy transport hands its options to create_engine().
    transport_options: dict[str, Any] = {}
    if broker.startswith(("redis://", "rediss://")):
        transport_options["visibility_timeout"] = w.visibility_timeout
        if w.redis_key_prefix:
            transport_options["global_keyprefix"] = w.redis_key_prefix
    backend_options: dict[str, Any] = {}
    if backend.startswith(("redis://", "rediss://")) and w.redis_key_prefix:
        backend_options["global_keyprefix"] = w.redis_key_prefix
    app.conf.update(
        broker_url=broker,
        result_backend=backend,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        result_backend_transport_options=backend_options,
        task_default_queue=w.queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        # At-least-once delivery (see the module docstring).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=w.task_time_limit,
        task_soft_time_limit=max(1, w.task_time_limit - 30),
        # Progress lives in the database; results only serve `worker-ping`.
        task_ignore_result=True,
        result_expires=timedelta(hours=1),
        worker_send_task_events=False,
        beat_schedule=_schedule(),
        beat_scheduler="backend.worker.celery_app:AliveScheduler",
        beat_max_loop_interval=max(1.0, min(5.0, w.relay_interval)),
    )


# Where the tasks are: the worker's own, and each domain's beside its services. Named, not
# imported: the domains build on this app, not the other way round.
TASK_MODULES = (
    "backend.worker.tasks",
    "backend.access.tasks",
    "backend.certificates.tasks",
    "backend.orders.tasks",
    "backend.checkout.tasks",
    "backend.provider.tasks",
    "backend.payouts.tasks",
    "backend.webhooks.tasks",
)

app = Celery("tuition", include=list(TASK_MODULES))
configure(app)


def broker_supports_broadcast(celery: Celery | None = None) -> bool:
    """Whether remote control (ping, inspect) works on the configured broker."""
    celery = celery or app
    # Only reads the transport class's capabilities: no connection is opened.
    with celery.connection_for_write() as conn:
        return "fanout" in conn.transport.implements.exchange_type


class AliveScheduler(Scheduler):
    """Beat's in-memory scheduler that touches the healthcheck file on every tick.

    In memory on purpose: every entry is a short interval, so nothing is gained by persisting
    last-run times, and several beats never fight over a schedule file.
    """

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Touch the alive file, then run due entries."""
        try:
            path: Path = get_settings().worker.alive_file
            path.touch()
        except OSError as exc:  # a read-only /tmp must not stop the schedule
            log.warning("cannot touch the beat alive file: %s", exc)
        return float(super().tick(*args, **kwargs))


@worker_process_init.connect
def _fresh_connections_after_fork(**_: Any) -> None:
    # A prefork child inherits the parent's DB pool and HTTP sessions: start its own.
    from backend.core.db import reset_process_engine
    from backend.worker.chain import reset_chain
    from backend.worker.runtime import reset_runtime

    reset_process_engine(dispose=True)
    reset_chain()
    reset_runtime()
    _start_heartbeat()


# The worker's node name ("worker-1@host"), as tasks see it in `request.hostname`.
_node: str | None = None


@celeryd_init.connect
def _remember_node(sender: str | None = None, **_: Any) -> None:
    global _node
    _node = sender


def _start_heartbeat() -> None:
    from backend.worker.heartbeat import start_for_this_process

    node = _node or f"celery@{socket.gethostname()}"
    start_for_this_process(node, get_settings().worker.heartbeat_interval)


@worker_ready.connect
def _heartbeat_of_the_main_process(sender: Any = None, **_: Any) -> None:
    # The main process holds received messages (prefetched, or waiting for their ETA) before a
    # pool process runs them, and runs them itself with a thread pool.
    _start_heartbeat()
    # A worker that (re)starts settles the transactions in flight now rather than at beat's next
    # recovery tick (safe to run concurrently with other workers' runs).
    if not app.conf.task_always_eager:
        app.send_task("tuition.recover_transactions", expires=60)


@task_received.connect
def _claim_received(request: Any = None, **_: Any) -> None:
    from backend.worker.heartbeat import claim_in_this_process

    job_id = (getattr(request, "kwargs", None) or {}).get("job_id")
    if job_id:
        claim_in_this_process(int(job_id))


@worker_process_shutdown.connect
@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    from backend.worker.heartbeat import stop_for_this_process

    stop_for_this_process()
