"""Webhook acknowledgement body."""

from __future__ import annotations

from backend.core.schemas import ApiModel


class WebhookAck(ApiModel):
    """What Stripe gets back: received, and what processing did."""

    received: bool
    event_id: str
    duplicate: bool
    outcome: str | None
