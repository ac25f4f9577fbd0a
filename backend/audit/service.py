"""Writing the audit log, in the caller's transaction: a change and its record commit together."""

from __future__ import annotations

from datetime import datetime
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


# The columns of `row`, for writers that insert many entries at once (the indexer's backfill).
COLUMNS = (
    "at", "actor", "action", "subject_type", "subject_id", "before", "after", "reason",
    "request_id",
)  # fmt: skip


def row(
    *,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str | None,
    request_id: str | None,
) -> tuple[Any, ...]:
    """The values of one entry in `COLUMNS` order (what `record` writes, for a bulk insert)."""
    return (at, actor, action, subject_type, str(subject_id), before, after, reason, request_id)
