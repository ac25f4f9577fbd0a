"""The beat schedule runs every periodic job, and each names a task the worker registers."""

from __future__ import annotations

from backend.worker.celery_app import _schedule, app


def test_every_scheduled_job_names_a_registered_task() -> None:
    app.loader.import_default_modules()
    schedule = _schedule()
    assert schedule["expire-card-orders"]["task"] == "tuition.expire_card_orders"
    missing = [e["task"] for e in schedule.values() if e["task"] not in app.tasks]
    assert missing == []
