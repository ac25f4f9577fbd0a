"""What `tuition worker`, `tuition beat` and `tuition worker-ping` run."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile


def run_worker(
    *,
    concurrency: int,
    pool: str,
    beat: bool,
    loglevel: str,
    metrics_port: int | None,
    hostname: str | None = None,
) -> None:
    """Run a Celery worker on the configured broker (blocks until it stops)."""
    from backend.core.config import get_settings

    worker = get_settings().worker
    metrics_port = metrics_port or worker.metrics_port
    samples_dir = None
    if metrics_port and pool == "prefork" and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Before prometheus_client is imported: prefork children then write their samples where
        # the main process's endpoint aggregates them.
        samples_dir = tempfile.mkdtemp(prefix="tuition-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = samples_dir
    from backend.worker import metrics
    from backend.worker.celery_app import app

    if metrics_port:
        metrics.serve(metrics_port)
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
        f"--queues={worker.queue}",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    if beat:
        argv.append("--beat")
    try:
        app.worker_main(argv)
    finally:
        if samples_dir:  # each start makes its own: do not leave them piling up in /tmp
            shutil.rmtree(samples_dir, ignore_errors=True)


def run_beat(*, loglevel: str) -> None:
    """Run the scheduler (blocks until it stops)."""
    from backend.worker.celery_app import app

    app.start(["beat", f"--loglevel={loglevel}"])


def ping(timeout: float = 5.0) -> bool:
    """Whether a worker answers within `timeout` seconds.

    Brokers with broadcast (Redis) get a remote-control ping, which a busy worker still answers;
    on the embedded broker, which has none, a `tuition.ping` task must make the round trip.
    """
    from celery.exceptions import TimeoutError as CeleryTimeout

    from backend.worker.celery_app import app, broker_supports_broadcast

    if broker_supports_broadcast(app):
        # This host's worker (the container's, under compose), first answer wins.
        node = f"celery@{socket.gethostname()}"
        return bool(app.control.ping(destination=[node], timeout=timeout, limit=1))
    result = app.send_task("tuition.ping", expires=timeout)
    try:
        return bool(result.get(timeout=timeout) == "pong")
    except CeleryTimeout:
        return False
    finally:
        result.forget()
