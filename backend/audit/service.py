"""Writing the audit log, in the caller's transaction: a change and its record commit together."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from backend.audit.models import AuditEntry
from backend.core.logging import request_id_var


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one audit entry (flushed with the caller's transaction, never committed here)."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        before=before,
        after=after,
        reason=reason,
        request_id=request_id_var.get(),
    )
    session.add(entry)
    return entry
