"""Every entitlement's on-chain record (status, ref, transaction, error), and certificate
revocations asked for through the product (reason code and text).

Existing rows: crypto entitlements are on-chain facts ("recorded"); other active ones become
"pending" and get their `ref` (card: the order's `order_ref`; free claims and admin grants: a
hash of the entitlement id) so the reconciler can send or confirm them; revoked ones are
"revoked". Unpublished outbox messages of the card-only topics are rewritten to the topics of
the one grant/revoke path, keyed by entitlement.

Revision ID: 0008_access_on_chain
Revises: 0007_drop_applied_logs_tx_index
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from eth_utils import keccak

import backend.core.db

revision: str = "0008_access_on_chain"
down_revision: str | Sequence[str] | None = "0007_drop_applied_logs_tx_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "chain_status IN ('pending', 'recorded', 'failed', 'revoke_pending', 'revoked')"

entitlements = sa.table(
    "entitlements",
    sa.column("id", sa.Integer),
    sa.column("source", sa.String),
    sa.column("order_id", sa.String),
    sa.column("revoked_at", sa.DateTime),
    sa.column("chain_status", sa.String),
    sa.column("chain_ref", sa.String),
)
orders = sa.table("orders", sa.column("id", sa.String), sa.column("order_ref", sa.String))
outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("topic", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("dedupe_key", sa.String),
    sa.column("published_at", sa.DateTime),
)


def _entitlement_ref(entitlement_id: int) -> str:
    # Same as backend.access.service.entitlement_ref (frozen here).
    return "0x" + keccak(text=f"tuition:entitlement:{entitlement_id}").hex()


def upgrade() -> None:
    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "chain_status", sa.String(length=16), nullable=False, server_default="pending"
            )
        )
        batch_op.add_column(sa.Column("chain_ref", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("chain_tx_hash", sa.String(length=66), nullable=True))
        batch_op.add_column(sa.Column("chain_error", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("chain_updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoke_reason_code", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("revoke_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column(
                "revoke_requested_at", backend.core.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("revoke_requested_by", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("revoke_tx_hash", sa.String(length=66), nullable=True))
    _backfill()
    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.alter_column("chain_status", server_default=None)
        batch_op.create_check_constraint(op.f("ck_entitlements_chain_status"), STATUSES)


def _backfill() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.update(entitlements)
        .where(entitlements.c.source == "crypto", entitlements.c.revoked_at.is_(None))
        .values(chain_status="recorded")
    )
    bind.execute(
        sa.update(entitlements)
        .where(entitlements.c.revoked_at.is_not(None))
        .values(chain_status="revoked")
    )
    refs = dict(
        bind.execute(
            sa.select(entitlements.c.id, orders.c.order_ref)
            .select_from(entitlements)
            .outerjoin(orders, orders.c.id == entitlements.c.order_id)
            .where(entitlements.c.source != "crypto")
        ).all()
    )
    for entitlement_id, order_ref in refs.items():
        bind.execute(
            sa.update(entitlements)
            .where(entitlements.c.id == entitlement_id)
            .values(chain_ref=order_ref or _entitlement_ref(entitlement_id))
        )
    _rewrite_card_topics(bind)


def _rewrite_card_topics(bind: sa.Connection) -> None:
    topics = {
        "access.card_grant": "access.chain_grant",
        "access.card_revoke": "access.chain_revoke",
    }
    pending = bind.execute(
        sa.select(outbox.c.id, outbox.c.topic, outbox.c.payload).where(
            outbox.c.topic.in_(list(topics)), outbox.c.published_at.is_(None)
        )
    ).all()
    for message_id, topic, payload in pending:
        order_id = (payload or {}).get("orderId")
        entitlement_id = bind.scalar(
            sa.select(sa.func.max(entitlements.c.id)).where(entitlements.c.order_id == order_id)
        )
        if entitlement_id is None:
            continue  # nothing to mirror: the relay reports the old topic as unroutable
        bind.execute(
            sa.update(outbox)
            .where(outbox.c.id == message_id)
            .values(
                topic=topics[topic],
                payload={"entitlementId": entitlement_id},
                dedupe_key=f"{topics[topic]}:{entitlement_id}",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_column("revoke_tx_hash")
        batch_op.drop_column("revoke_requested_by")
        batch_op.drop_column("revoke_requested_at")
        batch_op.drop_column("revoke_reason")
        batch_op.drop_column("revoke_reason_code")
    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_entitlements_chain_status"), type_="check")
        batch_op.drop_column("chain_updated_at")
        batch_op.drop_column("chain_error")
        batch_op.drop_column("chain_tx_hash")
        batch_op.drop_column("chain_ref")
        batch_op.drop_column("chain_status")
