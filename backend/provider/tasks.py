"""The provider domain's Celery task: put an admin's verification of a provider on-chain.

The body is `onchain.put_verification_on_chain`; the outbox topic `provider.verification` routes
here.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from backend.provider.onchain import put_verification_on_chain
from backend.worker.celery_app import app
from backend.worker.tasks import TuitionTask, send_on_chain


@app.task(base=TuitionTask, bind=True, name="tuition.set_provider_verification")
def set_provider_verification(
    self: Task, request_id: int, job_id: int | None = None
) -> dict[str, Any]:
    """Send `verifyProvider` / `unverifyProvider` for one admin request."""
    return send_on_chain(self, put_verification_on_chain, request_id)
