"""The append-only audit log of money and access changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, BigId, JsonType, UTCDateTime, utcnow


class AuditEntry(Base):
    """Who did what to which subject, with the before/after state and why.

    Append-only: database triggers (see migration 0001) refuse UPDATE and DELETE.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject", "subject_type", "subject_id"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(120))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
