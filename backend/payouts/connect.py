"""Providers' Stripe Connect accounts: onboarding, and their state kept from Stripe.

A provider gets one Express account (created on its first onboarding request; Stripe's
idempotency key makes a retry return the same account). Its state (details submitted, charges
and payouts enabled, requirements due) is what Stripe last said: `apply_account` runs on every
`account.updated` webhook with the account re-fetched from Stripe, never the payload's copy.
Once the account is ready, card sales of the provider's courses are destination charges to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from backend.audit.models import AuditEntry
from backend.audit.service import record as audit
from backend.core.db import session_scope
from backend.integrations.stripe_gateway import StripeGateway
from backend.orders.models import Order, OrderStatus
from backend.payouts.models import ConnectAccount

STRIPE = "stripe"


@dataclass(frozen=True)
class Onboarding:
    """Where to send the provider to (a one-time Stripe link) and its account."""

    url: str
    account: ConnectAccount


def account_of(session: Session, provider: str) -> ConnectAccount | None:
    """The provider's Connect account, if it started onboarding."""
    return session.get(ConnectAccount, provider)


def ready_account(session: Session, provider: str) -> ConnectAccount | None:
    """The provider's Connect account if card sales can be paid out to it."""
    account = account_of(session, provider)
    return account if account is not None and account.ready else None


def ready_providers(session: Session, providers: set[str]) -> set[str]:
    """Which of `providers` have a Connect account ready for card sales (one query)."""
    if not providers:
        return set()
    rows = session.scalars(
        select(ConnectAccount.provider).where(
            ConnectAccount.provider.in_(providers),
            ConnectAccount.details_submitted.is_(True),
            ConnectAccount.charges_enabled.is_(True),
        )
    )
    return set(rows)


def record_new_account(
    session: Session, provider: str, stripe_account: Mapping[str, Any]
) -> ConnectAccount:
    """Record the account Stripe created (a concurrent request may have recorded it first)."""
    row = ConnectAccount(provider=provider, stripe_account_id=str(stripe_account["id"]))
    _copy_state(row, stripe_account)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = session.get(ConnectAccount, provider, populate_existing=True)
        if existing is None:
            raise
        return existing
    audit(
        session,
        actor=f"user:{provider}",
        action="connect.account_created",
        subject_type="provider",
        subject_id=provider,
        after={"stripeAccountId": row.stripe_account_id},
        reason="provider started Stripe onboarding",
    )
    return row


async def start_onboarding(
    session: AsyncSession, gateway: StripeGateway, *, provider: str
) -> Onboarding:
    """The provider's onboarding link, creating its Express account on the first call."""
    account = await session.run_sync(account_of, provider)
    if account is None:
        created = await gateway.create_connect_account(provider=provider)
        account = await session.run_sync(record_new_account, provider, created)
    link = await gateway.create_account_link(account_id=account.stripe_account_id)
    return Onboarding(url=str(link["url"]), account=account)


def _state(row: ConnectAccount) -> dict[str, Any]:
    return {
        "detailsSubmitted": row.details_submitted,
        "chargesEnabled": row.charges_enabled,
        "payoutsEnabled": row.payouts_enabled,
        "requirementsDue": list(row.requirements_due or []),
    }


def _copy_state(row: ConnectAccount, stripe_account: Mapping[str, Any]) -> None:
    requirements = stripe_account.get("requirements") or {}
    due = requirements.get("currently_due") if isinstance(requirements, Mapping) else None
    row.details_submitted = bool(stripe_account.get("details_submitted"))
    row.charges_enabled = bool(stripe_account.get("charges_enabled"))
    row.payouts_enabled = bool(stripe_account.get("payouts_enabled"))
    row.requirements_due = [str(item) for item in due] if isinstance(due, list) else []


def apply_account(session: Session, stripe_account: Mapping[str, Any], *, reason: str) -> str:
    """Keep what Stripe says of a provider's account (re-fetched); returns the outcome:
    `account_updated`, `noop` when nothing changed, `unknown_account` for an account this
    platform did not create for a provider."""
    row = session.scalar(
        select(ConnectAccount)
        .where(ConnectAccount.stripe_account_id == str(stripe_account.get("id")))
        .with_for_update()
    )
    if row is None:
        return "unknown_account"
    before = _state(row)
    _copy_state(row, stripe_account)
    after = _state(row)
    if after == before:
        return "noop"
    session.flush()
    audit(
        session,
        actor=STRIPE,
        action="connect.account_updated",
        subject_type="provider",
        subject_id=row.provider,
        before=before,
        after=after,
        reason=reason,
    )
    return "account_updated"


async def card_balance(
    session: AsyncSession, gateway: StripeGateway, *, provider: str, payouts: int = 20
) -> tuple[ConnectAccount | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """The provider's account, its Stripe balance and latest payouts (read live from Stripe,
    like on-chain balances are read from the chain); no Stripe call before it is ready."""
    account = await session.run_sync(account_of, provider)
    if account is None or not account.ready:
        return account, None, []
    balance = await gateway.connected_balance(account.stripe_account_id)
    recent = await gateway.connected_payouts(account.stripe_account_id, limit=payouts)
    return account, balance, recent


def reverse_for_lost_dispute(
    factory: sessionmaker[Session], gateway: StripeGateway, order_id: str
) -> str:
    """Take the provider's share of a lost dispute back: Stripe debited the platform for the
    whole destination charge, so its transfer to the provider is reversed (net of the fee).
    Safe to run twice: Stripe's idempotency key returns the first reversal, and the audit entry
    is written once. Returns the outcome."""
    with session_scope(factory) as s:
        order = s.get(Order, order_id)
        if order is None or order.status != OrderStatus.LOST or not order.stripe_destination:
            return "noop"
        if not order.stripe_charge_id:
            return "noop:no_charge"
        charge_id, net = order.stripe_charge_id, order.amount - order.fee
    charge = gateway.fetch_sync("charge", charge_id)
    transfer_id = charge.get("transfer")
    if isinstance(transfer_id, Mapping):
        transfer_id = transfer_id.get("id")
    if not transfer_id:
        return "noop:no_transfer"
    reversal_id = gateway.reverse_transfer_sync(
        transfer_id=str(transfer_id), amount=net, order_id=order_id
    )
    with session_scope(factory) as s:
        done = s.scalar(
            select(AuditEntry.id).where(
                AuditEntry.action == "connect.transfer_reversed",
                AuditEntry.subject_type == "order",
                AuditEntry.subject_id == order_id,
            )
        )
        if done is None:
            audit(
                s,
                actor=STRIPE,
                action="connect.transfer_reversed",
                subject_type="order",
                subject_id=order_id,
                after={"transfer": str(transfer_id), "reversal": reversal_id, "amount": str(net)},
                reason="dispute lost: the provider's share of the destination charge taken back",
            )
    return "reversed"
