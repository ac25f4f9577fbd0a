"""The payouts' Celery task: taking a provider's share of a lost card dispute back."""

from __future__ import annotations

from typing import Any

from celery import Task

from backend.core.db import process_session_factory
from backend.payouts.connect import reverse_for_lost_dispute
from backend.worker.celery_app import app
from backend.worker.runtime import get_stripe_gateway
from backend.worker.tasks import TuitionTask


@app.task(base=TuitionTask, bind=True, name="tuition.reverse_card_transfer")
def reverse_card_transfer(self: Task, order_id: str, job_id: int | None = None) -> dict[str, Any]:
    """Reverse the provider's transfer of a destination charge whose dispute was lost."""
    outcome = reverse_for_lost_dispute(
        process_session_factory(), get_stripe_gateway(), str(order_id)
    )
    return {"order_id": order_id, "outcome": outcome}
