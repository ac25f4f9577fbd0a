"""The bulk purchase path writes exactly what the backend's record_crypto_purchase writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from support.emitter import address
from support.indexer import (
    active_entitlements,
    applied_count,
    backend_sink,
    duplicate_keys,
    make_indexer,
)

from backend.access.models import Entitlement
from backend.audit.models import AuditEntry
from backend.core.db import session_scope
from backend.orders.models import Order
from backend.orders.service import order_snapshot
from indexer.models import IndexerAppliedLog

ZERO = "0x" + "00" * 20
NOREF = "0x" + "00" * 32
PROVIDER = address(0xA11CE)


def emit(emitter, anvil) -> None:
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Bulk course")
    emitter.tx("courseCreated", 2, PROVIDER, 0, "Other course")
    # Simple purchases, then cases that need decisions, mixed in one run of purchases:
    calls = [
        ("purchases", (1, address(1), 5000 + 20 * i, 20, ZERO, 10**15 + i, 10**13))
        for i in range(5)
    ]
    calls += [
        ("purchased", (1, address(1), address(5000), ZERO, 1, 0, NOREF)),  # already entitled
        ("purchased", (2, address(1), address(7), ZERO, 2, 0, "0x" + "12" * 32)),  # unknown ref
        ("purchased", (99, address(1), address(8), ZERO, 3, 0, NOREF)),  # unknown course
        ("purchases", (2, address(2), 9000, 10, ZERO, 5, 1)),
        ("purchases", (2, address(2), 9005, 2, ZERO, 5, 1)),  # duplicates within the run
    ]
    emitter.send_many(calls)
    anvil.mine(2)


def normalized(db) -> dict[str, Any]:
    with db.sessions() as s:
        orders = s.scalars(select(Order).order_by(Order.tx_hash, Order.log_index)).all()
        by_id = {o.id: i for i, o in enumerate(orders)}
        ents = s.scalars(select(Entitlement).order_by(Entitlement.id)).all()
        ent_key = {e.id: (by_id.get(e.order_id), e.revoked_at is None) for e in ents}
        audit = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()

        def scrub(value: Any) -> Any:
            if isinstance(value, dict):
                out = {k: scrub(v) for k, v in value.items() if k not in ("grantedAt",)}
                if "orderId" in out:
                    out["orderId"] = by_id.get(value["orderId"])
                if "id" in out:
                    out["id"] = ent_key.get(value["id"])
                return out
            return value

        return {
            "orders": [
                {**order_snapshot(o), "order_ref": o.order_ref, "block_number": o.block_number,
                 "status": o.status, "paid": o.paid_at is not None}
                for o in orders
            ],
            "entitlements": sorted(
                (by_id.get(e.order_id), e.address, e.course_id, e.source, e.granted_by,
                 e.revoked_at is None)
                for e in ents
            ),
            "audit": sorted(
                (
                    a.actor, a.action, a.subject_type,
                    by_id.get(a.subject_id) if a.subject_type == "order"
                    else ent_key.get(int(a.subject_id)),
                    repr(scrub(a.before)), repr(scrub(a.after)), a.reason,
                )
                for a in audit
            ),
        }  # fmt: skip


def test_bulk_path_matches_the_backend_service(db_factory, anvil, emitter):
    emit(emitter, anvil)
    results = {}
    for bulk in (True, False):
        db = db_factory()
        ix = make_indexer(
            db,
            anvil,
            [emitter.address],
            emitter.deploy_block,
            reorg_window=1,
            sink=backend_sink(anvil.chain_id, bulk=bulk),
        )
        ix.catch_up()
        results[bulk] = normalized(db)
        with db.sessions() as s:
            effects = s.scalars(select(IndexerAppliedLog.effect)).all()
        assert sum(1 for e in effects if e.get("bulk")) == (
            108 if bulk else 0
        )  # all but the 7 that need decisions
        assert duplicate_keys(db) == 0
        assert applied_count(db, "CoursePurchased") == 100 + 3 + 12
        assert sum(active_entitlements(db).values()) == 100 + 1 + 10
    fast, slow = results[True], results[False]
    assert fast["orders"] == slow["orders"]
    assert fast["entitlements"] == slow["entitlements"]
    assert fast["audit"] == slow["audit"]


def test_bulk_rows_read_back_through_the_orm(db, anvil, emitter):
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Bulk course")
    emitter.send_many([("purchases", (1, address(1), 10**30, 50, ZERO, 2**200, 7))])
    ix = make_indexer(
        db,
        anvil,
        [emitter.address],
        emitter.deploy_block,
        reorg_window=1,
        sink=backend_sink(anvil.chain_id),
    )
    ix.catch_up()
    with session_scope(db.sessions) as s:
        order = s.scalars(select(Order).limit(1)).one()
        assert order.amount == 2**200 and order.fee == 7 and order.paid_at.tzinfo is not None
        ent = s.scalars(select(Entitlement).where(Entitlement.order_id == order.id)).one()
        assert ent.address == order.recipient and ent.granted_at.tzinfo is not None
        # The ids reserved for bulk rows do not collide with ORM inserts afterwards.
        s.add(
            Entitlement(
                address=address(1), course_id=order.course_id, source="grant", granted_by="test"
            )
        )
        s.flush()
