"""Stripe webhook deliveries: every delivery is stored; valid ones are deduplicated by event id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, BigId, JsonType, UTCDateTime, utcnow


class StripeEvent(Base):
    """A webhook delivery.

    `event_id` is set only once the signature verified (UNIQUE: a duplicate delivery of the same
    event hits the constraint); a delivery with a bad signature is kept with `event_id` NULL and
    the id it claimed in `claimed_event_id`, so forged deliveries can never squat a real id.
    """

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    claimed_event_id: Mapped[str | None] = mapped_column(String(255), default=None)
    type: Mapped[str | None] = mapped_column(String(100), default=None)
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    signature_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    processed: Mapped[bool] = mapped_column(Boolean, default=False)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    outcome: Mapped[str | None] = mapped_column(String(200), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
