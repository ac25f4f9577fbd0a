"""Reconciliation: DB entitlements versus on-chain `hasAccess`, one batch per run.

Each run takes the next batch of entitlements (a cursor in `worker_cursors` walks the table and
wraps around) and asks the chain about each (course, learner):

- active in the DB, no access on-chain: for a card entitlement the grant is missing: a grant is
  enqueued (safe: it only writes what the DB already decided). Other sources are reported.
- revoked in the DB (and no other active entitlement), card access of that order still on-chain:
  the revoke is missing: a revoke is enqueued. Anything else is reported.

Every drift is logged, counted (`tuition_reconcile_drift_total`), stored in
`worker_reconcile_drift` and written to the audit log. Entitlements changed within
`reconcile_grace` seconds are skipped: their chain write may still be in the outbox.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from backend.access.models import AccessSource, Entitlement
from backend.audit.service import record as audit
from backend.catalog.models import Course
from backend.core.config import WorkerSettings
from backend.core.db import session_scope, utcnow
from backend.orders.models import Order
from backend.worker import metrics
from backend.worker.chain import SOURCE_CARD, Chain, access_record
from backend.worker.jobs import mark_enqueued, upsert_job
from backend.worker.models import ReconcileDrift, WorkerCursor
from backend.worker.outbox import Publisher

log = logging.getLogger(__name__)

CURSOR = "reconcile_access"
ACTOR = "worker:reconcile"


@dataclass(frozen=True)
class Row:
    """An entitlement as the comparison needs it."""

    id: int
    course_onchain_id: int
    learner: str
    source: str
    order_id: str | None
    order_ref: str | None
    active: bool


@dataclass
class Drift:
    """One disagreement and the action taken."""

    row: Row
    kind: str
    chain_access: bool
    chain_source: int
    action: str = "reported"
    job: tuple[str, dict[str, Any]] | None = None


def _batch(
    s: Session, after: int, limit: int, grace_cutoff: Any
) -> tuple[list[Row], set[tuple[int, str]], int]:
    """The next entitlements after `after`, the (course id, learner) pairs active in the DB
    among them, and the cursor for the next run."""
    found = s.execute(
        select(Entitlement, Course.onchain_id, Order.order_ref)
        .join(Course, Course.id == Entitlement.course_id)
        .outerjoin(Order, Order.id == Entitlement.order_id)
        .where(Entitlement.id > after)
        .order_by(Entitlement.id)
        .limit(limit)
    ).all()
    next_cursor = found[-1][0].id if len(found) == limit else 0  # wrap around at the end
    rows: list[Row] = []
    for ent, onchain_id, order_ref in found:
        changed = ent.revoked_at or ent.granted_at
        if onchain_id is None or changed > grace_cutoff:
            continue
        rows.append(
            Row(
                id=ent.id,
                course_onchain_id=int(onchain_id),
                learner=ent.address,
                source=ent.source,
                order_id=ent.order_id,
                order_ref=order_ref,
                active=ent.revoked_at is None,
            )
        )
    pairs = {(r.course_onchain_id, r.learner) for r in rows if not r.active}
    active_pairs: set[tuple[int, str]] = set()
    if pairs:
        active_pairs = {
            (int(onchain_id or 0), address)
            for onchain_id, address in s.execute(
                select(Course.onchain_id, Entitlement.address)
                .join(Course, Course.id == Entitlement.course_id)
                .where(
                    Entitlement.revoked_at.is_(None),
                    tuple_(Course.onchain_id, Entitlement.address).in_(list(pairs)),
                )
            ).all()
        }
    active_pairs |= {(r.course_onchain_id, r.learner) for r in rows if r.active}
    return rows, active_pairs, next_cursor


def _judge(chain: Chain, rows: list[Row], active_pairs: set[tuple[int, str]]) -> list[Drift]:
    drifts: list[Drift] = []
    seen: set[tuple[int, str]] = set()
    for row in rows:
        pair = (row.course_onchain_id, row.learner)
        if not row.active and (pair in active_pairs or pair in seen):
            continue  # judged through the active entitlement (or another revoked one)
        seen.add(pair)
        source, digest = access_record(chain, row.course_onchain_id, row.learner)
        metrics.RECONCILE_CHECKED.inc()
        on_chain = source != 0
        if row.active and not on_chain:
            drift = Drift(row, "missing_on_chain", on_chain, source)
            if row.source == AccessSource.CARD and row.order_id:
                drift.action = "enqueued_grant"
                drift.job = ("tuition.record_card_grant", {"order_id": row.order_id})
            drifts.append(drift)
        elif not row.active and on_chain:
            drift = Drift(row, "unexpected_on_chain", on_chain, source)
            ours = (
                row.order_ref is not None
                and digest == bytes.fromhex(row.order_ref.removeprefix("0x"))[:21]
            )
            if row.source == AccessSource.CARD and row.order_id and source == SOURCE_CARD and ours:
                drift.action = "enqueued_revoke"
                drift.job = ("tuition.record_card_revoke", {"order_id": row.order_id})
            drifts.append(drift)
    return drifts


def reconcile_access(
    *,
    factory: sessionmaker[Session],
    chain: Chain,
    settings: WorkerSettings,
    publish: Publisher,
    batch: int | None = None,
) -> dict[str, Any]:
    """Check the next batch; record, report and (where safe) fix drift. Returns a summary."""
    run_id = str(uuid.uuid4())
    limit = batch or settings.reconcile_batch
    grace_cutoff = utcnow() - timedelta(seconds=settings.reconcile_grace)
    with session_scope(factory) as s:
        cursor = s.get(WorkerCursor, CURSOR)
        after = cursor.position if cursor else 0
        rows, active_pairs, next_cursor = _batch(s, after, limit, grace_cutoff)

    drifts = _judge(chain, rows, active_pairs)  # chain calls outside any DB transaction

    to_publish: list[tuple[str, dict[str, Any]]] = []
    with session_scope(factory) as s:
        cursor = s.get(WorkerCursor, CURSOR)
        if cursor is None:
            s.add(WorkerCursor(name=CURSOR, position=next_cursor))
        else:
            cursor.position = next_cursor
        for d in drifts:
            detail = {
                "entitlement_id": d.row.id,
                "source": d.row.source,
                "order_id": d.row.order_id,
                "chain_source": d.chain_source,
            }
            if d.job is not None:
                task, kwargs = d.job
                topic = "reconcile." + task.rsplit("_", 1)[-1]  # reconcile.grant / .revoke
                job, needed = upsert_job(
                    s, topic=topic, ref=str(kwargs["order_id"]), task=task, payload=kwargs
                )
                if needed:
                    mark_enqueued(s, job)
                    s.flush()
                    to_publish.append((task, {**kwargs, "job_id": job.id}))
                else:
                    d.action = "fix_in_progress"
            s.add(
                ReconcileDrift(
                    run_id=run_id,
                    chain_id=chain.chain_id,
                    course_id=d.row.course_onchain_id,
                    learner=d.row.learner,
                    kind=d.kind,
                    db_active=d.row.active,
                    chain_access=d.chain_access,
                    action=d.action,
                    detail=detail,
                )
            )
            audit(
                s,
                actor=ACTOR,
                action="reconcile.drift",
                subject_type="entitlement",
                subject_id=d.row.id,
                before={"db_active": d.row.active, "chain_access": d.chain_access},
                after={"action": d.action},
                reason=d.kind,
            )
            metrics.DRIFT.labels(kind=d.kind).inc()
            log.warning(
                "drift %s: course %d learner %s (%s entitlement %d): %s",
                d.kind,
                d.row.course_onchain_id,
                d.row.learner,
                d.row.source,
                d.row.id,
                d.action,
            )
    for task, kwargs in to_publish:
        publish(task, kwargs)
    return {
        "run_id": run_id,
        "checked": len(rows),
        "drift": len(drifts),
        "fixes": len(to_publish),
        "next_cursor": next_cursor,
    }
