"""The certificate's Celery tasks: issue (mint or sign a claim voucher) and revoke on-chain.

The bodies are `issuance.issue_certificate` and `revocations.revoke_certificate`; the outbox
topics `certificate.requested` and `certificate.revoke` route here.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from backend.certificates.issuance import issue_certificate
from backend.certificates.revocations import revoke_certificate as revoke
from backend.core.config import get_settings
from backend.worker.celery_app import app
from backend.worker.tasks import TuitionTask, send_on_chain


@app.task(base=TuitionTask, bind=True, name="tuition.mint_certificate")
def mint_certificate(self: Task, certificate_id: int, job_id: int | None = None) -> dict[str, Any]:
    """Issue a requested certificate: mint with the issuer key, or sign a claim voucher."""
    return send_on_chain(self, issue_certificate, certificate_id, settings=get_settings().worker)


@app.task(base=TuitionTask, bind=True, name="tuition.revoke_certificate")
def revoke_certificate(
    self: Task, certificate_id: int, job_id: int | None = None
) -> dict[str, Any]:
    """Revoke a certificate on-chain with the reason code stored on its row."""
    return send_on_chain(self, revoke, certificate_id)
