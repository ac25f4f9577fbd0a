"""The order's Celery tasks: receipts (`receipts.send_receipt`) and expiring stale orders."""

from __future__ import annotations

from typing import Any

from celery import Task

from backend.core.config import get_settings
from backend.core.db import process_session_factory, session_scope
from backend.orders.receipts import send_receipt as send
from backend.orders.service import expire_stale_orders
from backend.worker.celery_app import app
from backend.worker.runtime import get_email_backend
from backend.worker.tasks import TuitionTask


@app.task(base=TuitionTask, bind=True, name="tuition.send_receipt")
def send_receipt(
    self: Task, order_id: str, kind: str = "paid", job_id: int | None = None
) -> dict[str, Any]:
    """Email the receipt of a paid or refunded order, once per (order, kind)."""
    return send(
        str(order_id),
        kind,
        factory=process_session_factory(),
        backend=get_email_backend(),
        settings=get_settings().worker,
    )


@app.task(name="tuition.expire_orders", ignore_result=True, acks_late=False)
def expire_orders() -> int:
    """Mark pending orders past their expiry as expired (every minute, from beat)."""
    with session_scope(process_session_factory()) as s:
        return expire_stale_orders(s)
