"""The demo provider's Stripe Connect account on the local Stripe stand-in (`tuition up`).

Card prices are offered only for providers who can be paid out by card
(`TUITION_CARD_REQUIRES_CONNECT`), so the local stack onboards the demo provider the way a real
one would: an Express account, onboarding completed at the stand-in, the state Stripe reports
kept in the database. Refuses anything but the stand-in (`TUITION_STRIPE_API_BASE`).
"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import Settings
from backend.core.db import make_engine, session_scope
from backend.integrations.stripe_gateway import StripeGateway
from backend.payouts.connect import account_of, apply_account, record_new_account


def onboard_demo_provider(settings: Settings, provider: str) -> str:
    """Onboard `provider` at the stand-in and record its ready account; returns its id."""
    if settings.stripe_api_base is None:
        raise RuntimeError("only for the local Stripe stand-in (TUITION_STRIPE_API_BASE)")
    gateway = StripeGateway(settings)

    async def at_stripe() -> dict[str, object]:
        created = await gateway.create_connect_account(provider=provider)
        account_id = str(created["id"])
        if not created.get("charges_enabled"):
            async with httpx.AsyncClient(timeout=30) as client:
                reply = await client.post(
                    f"{settings.stripe_api_base}/_fake/accounts/{account_id}/complete_onboarding"
                )
            reply.raise_for_status()
        return await gateway.fetch("account", account_id)

    account = asyncio.run(at_stripe())
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        with session_scope(sessionmaker(engine)) as session:
            _record(session, provider, account)
    finally:
        engine.dispose()
    return str(account["id"])


def _record(session: Session, provider: str, account: dict[str, object]) -> None:
    row = account_of(session, provider)
    if row is None:
        record_new_account(session, provider, account)
        return
    # A restarted stand-in forgot the old account (it keeps nothing on disk): use the new one.
    row.stripe_account_id = str(account["id"])
    session.flush()
    apply_account(session, account, reason="demo provider onboarded by `tuition up`")
