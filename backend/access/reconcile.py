"""Reconciliation: DB entitlements versus on-chain `hasAccess`, in both directions.

The rule: the database answers at once, the chain follows within the worker's latency, and this
repairs drift both ways. Each run:

1. takes the next batch of entitlements (a cursor in `worker_cursors` walks the table and wraps
   around) and asks the chain about each (course, learner):
   - active in the DB, no access on-chain: for card, free and granted access the grant is
     missing, so `record_access_grant` is enqueued (safe: it only writes what the DB decided).
     A crypto purchase the chain does not hold is reported.
   - active in both, the row still "pending"/"failed": the chain agrees, the row is marked
     "recorded".
   - revoked in the DB (and no other active entitlement), this row's Card/Grant access still
     on-chain: the revoke is missing, so `record_access_revoke` is enqueued. Anything else is
     reported.
2. scans the next range of the market's `AccessGranted` and `CoursePurchased` logs (a block
   cursor from the deploy block, wrapping at the head) for (course, learner) pairs the chain
   grants and the database has never heard of (for example a grant sent with the operator key
   outside the product). Those are reported as "chain_only" with the one-command fix
   `tuition access adopt COURSE LEARNER`, which records the chain's access in the database.

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

from eth_utils import keccak
from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from backend.access.models import AccessSource, ChainStatus, Entitlement, OnchainSource
from backend.audit.service import record as audit
from backend.catalog.models import CourseChain
from backend.core.config import WorkerSettings
from backend.core.db import session_scope, utcnow
from backend.worker import metrics
from backend.worker.chain import (
    Chain,
    access_record,
    call_rpc,
)
from backend.worker.jobs import mark_enqueued, upsert_job
from backend.worker.models import ReconcileDrift, WorkerCursor
from backend.worker.outbox import Publisher

log = logging.getLogger(__name__)

CURSOR = "reconcile_access"
CHAIN_CURSOR = "reconcile_chain_blocks"
ACTOR = "worker:reconcile"
MIRRORED = (AccessSource.CARD, AccessSource.FREE, AccessSource.GRANT)

ACCESS_GRANTED = "0x" + keccak(text="AccessGranted(uint256,address,uint8,bytes32)").hex()
COURSE_PURCHASED = (
    "0x"
    + keccak(text="CoursePurchased(uint256,address,address,address,uint256,uint256,bytes32)").hex()
)


def fix_command(course_onchain_id: int, learner: str) -> str:
    """The command that records a chain-only access in the database."""
    return f"tuition access adopt {course_onchain_id} {learner}"


@dataclass(frozen=True)
class Row:
    """An entitlement as the comparison needs it."""

    id: int
    course_onchain_id: int
    learner: str
    source: str
    order_id: str | None
    chain_ref: str | None
    chain_status: str
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


def _on(chain_id: int) -> Any:
    # Joins a course id to its registration on `chain_id` (only that chain's ids are compared).
    return (CourseChain.course_id == Entitlement.course_id) & (CourseChain.chain_id == chain_id)


def _batch(
    s: Session, chain_id: int, after: int, limit: int, grace_cutoff: Any
) -> tuple[list[Row], set[tuple[int, str]], int]:
    """The next entitlements after `after`, the (on-chain course id, learner) pairs of chain
    `chain_id` active in the DB among them, and the cursor for the next run."""
    found = s.execute(
        select(Entitlement, CourseChain.onchain_id)
        .outerjoin(CourseChain, _on(chain_id))
        .where(
            Entitlement.id > after,
            # This chain's records, and the mirrors no chain holds yet (this worker writes them).
            or_(Entitlement.chain_id == chain_id, Entitlement.chain_id.is_(None)),
        )
        .order_by(Entitlement.id)
        .limit(limit)
    ).all()
    next_cursor = found[-1][0].id if len(found) == limit else 0  # wrap around at the end
    rows: list[Row] = []
    for ent, onchain_id in found:
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
                chain_ref=ent.chain_ref,
                chain_status=ent.chain_status,
                active=ent.revoked_at is None,
            )
        )
    pairs = {(r.course_onchain_id, r.learner) for r in rows if not r.active}
    active_pairs: set[tuple[int, str]] = set()
    if pairs:
        active_pairs = {
            (int(onchain_id or 0), address)
            for onchain_id, address in s.execute(
                select(CourseChain.onchain_id, Entitlement.address)
                .join(CourseChain, _on(chain_id))
                .where(
                    Entitlement.revoked_at.is_(None),
                    tuple_(CourseChain.onchain_id, Entitlement.address).in_(list(pairs)),
                )
            ).all()
        }
    active_pairs |= {(r.course_onchain_id, r.learner) for r in rows if r.active}
    return rows, active_pairs, next_cursor


def _judge(
    chain: Chain, rows: list[Row], active_pairs: set[tuple[int, str]]
) -> tuple[list[Drift], list[int]]:
    """The drifts of a batch, and the ids of rows the chain confirms (to mark "recorded")."""
    drifts: list[Drift] = []
    confirmed: list[int] = []
    seen: set[tuple[int, str]] = set()
    for row in rows:
        pair = (row.course_onchain_id, row.learner)
        if not row.active and (pair in active_pairs or pair in seen):
            continue  # judged through the active entitlement (or another revoked one)
        seen.add(pair)
        source, digest = access_record(chain, row.course_onchain_id, row.learner)
        metrics.RECONCILE_CHECKED.inc()
        on_chain = source != 0
        if row.active and on_chain:
            if row.chain_status != ChainStatus.RECORDED:
                confirmed.append(row.id)
        elif row.active:
            drift = Drift(row, "missing_on_chain", on_chain, source)
            if row.source in MIRRORED:
                drift.action = "enqueued_grant"
                drift.job = ("tuition.record_access_grant", {"entitlement_id": row.id})
            drifts.append(drift)
        elif on_chain:
            drift = Drift(row, "unexpected_on_chain", on_chain, source)
            ours = (
                row.chain_ref is not None
                and digest == bytes.fromhex(row.chain_ref.removeprefix("0x"))[:21]
            )
            if (
                row.source in MIRRORED
                and source in (OnchainSource.CARD, OnchainSource.GRANT)
                and ours
            ):
                drift.action = "enqueued_revoke"
                drift.job = ("tuition.record_access_revoke", {"entitlement_id": row.id})
            drifts.append(drift)
    return drifts, confirmed


@dataclass(frozen=True)
class ChainOnly:
    """A (course, learner) the chain grants and the database has no entitlement for."""

    course_onchain_id: int
    learner: str
    source: int


def _chain_pairs(chain: Chain, start: int, blocks: int) -> tuple[list[tuple[int, str]], int, int]:
    """(course, learner) pairs of the market's grant and purchase logs in `blocks` blocks from
    `start`, the last block scanned and the head."""
    head = int(call_rpc(lambda: chain.w3.eth.block_number))
    start = max(start, chain.deployment.deploy_block)
    if start > head:
        return [], head, head
    end = min(head, start + blocks - 1)
    logs = call_rpc(
        lambda: chain.w3.eth.get_logs(
            {
                "address": chain.market.address,
                "fromBlock": start,
                "toBlock": end,
                "topics": [[ACCESS_GRANTED, COURSE_PURCHASED]],
            }
        )
    )
    pairs: list[tuple[int, str]] = []
    for lg in logs:
        topics = [bytes(t) for t in lg["topics"]]
        # AccessGranted(courseId, learner, ...); CoursePurchased(courseId, buyer, recipient, ...)
        who = topics[2] if topics[0].hex() == ACCESS_GRANTED[2:] else topics[3]
        pairs.append((int.from_bytes(topics[1], "big"), chain.w3.to_checksum_address(who[12:])))
    return pairs, end, head


def _judge_chain(s: Session, chain: Chain, pairs: list[tuple[int, str]]) -> list[ChainOnly]:
    """The pairs that hold access on-chain and have no entitlement row at all (rows that exist
    are judged by the entitlement walk)."""
    unique = sorted(set(pairs))
    if not unique:
        return []
    courses = dict(
        s.execute(
            select(CourseChain.onchain_id, CourseChain.course_id).where(
                CourseChain.chain_id == chain.chain_id,
                CourseChain.onchain_id.in_({c for c, _ in unique}),
            )
        ).all()
    )
    known = {
        (int(onchain_id), address)
        for onchain_id, address in s.execute(
            select(CourseChain.onchain_id, Entitlement.address)
            .join(CourseChain, _on(chain.chain_id))
            .where(tuple_(CourseChain.onchain_id, Entitlement.address).in_(unique))
        ).all()
    }
    found: list[ChainOnly] = []
    for course_onchain_id, learner in unique:
        if course_onchain_id not in courses or (course_onchain_id, learner) in known:
            continue  # not a course of this product, or the entitlement walk's business
        source, _digest = access_record(chain, course_onchain_id, learner)
        metrics.RECONCILE_CHECKED.inc()
        if source != 0:
            found.append(ChainOnly(course_onchain_id, learner, source))
    return found


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
        # Each chain's walk has its own cursors.
        cursor_name, chain_cursor_name = (f"{c}:{chain.chain_id}" for c in (CURSOR, CHAIN_CURSOR))
        cursor = s.get(WorkerCursor, cursor_name)
        after = cursor.position if cursor else 0
        rows, active_pairs, next_cursor = _batch(s, chain.chain_id, after, limit, grace_cutoff)
        chain_cursor = s.get(WorkerCursor, chain_cursor_name)
        from_block = chain_cursor.position if chain_cursor else 0

    # Chain calls outside any DB transaction.
    drifts, confirmed = _judge(chain, rows, active_pairs)
    pairs, last_block, head = _chain_pairs(chain, from_block, settings.reconcile_blocks)
    with session_scope(factory) as s:
        chain_only = _judge_chain(s, chain, pairs)
    next_block = 0 if last_block >= head else last_block + 1  # wrap around at the head

    to_publish: list[tuple[str, dict[str, Any]]] = []
    with session_scope(factory) as s:
        _advance(s, cursor_name, next_cursor)
        _advance(s, chain_cursor_name, next_block)
        if confirmed:
            s.execute(
                update(Entitlement)
                .where(Entitlement.id.in_(confirmed), Entitlement.revoked_at.is_(None))
                .values(
                    chain_status=ChainStatus.RECORDED, chain_error=None, chain_updated_at=utcnow()
                )
            )
        for c in chain_only:
            _report_chain_only(s, run_id, chain.chain_id, c)
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
                    s, topic=topic, ref=str(kwargs["entitlement_id"]), task=task, payload=kwargs
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
        "drift": len(drifts) + len(chain_only),
        "chain_only": len(chain_only),
        "confirmed": len(confirmed),
        "fixes": len(to_publish),
        "next_cursor": next_cursor,
        "next_block": next_block,
    }


def _advance(s: Session, name: str, position: int) -> None:
    cursor = s.get(WorkerCursor, name)
    if cursor is None:
        s.add(WorkerCursor(name=name, position=position))
    else:
        cursor.position = position


def _report_chain_only(s: Session, run_id: str, chain_id: int, c: ChainOnly) -> None:
    fix = fix_command(c.course_onchain_id, c.learner)
    s.add(
        ReconcileDrift(
            run_id=run_id,
            chain_id=chain_id,
            course_id=c.course_onchain_id,
            learner=c.learner,
            kind="chain_only",
            db_active=False,
            chain_access=True,
            action="reported",
            detail={"chain_source": c.source, "fix": fix},
        )
    )
    audit(
        s,
        actor=ACTOR,
        action="reconcile.drift",
        subject_type="course",
        subject_id=c.course_onchain_id,
        before={"db_active": False, "chain_access": True, "learner": c.learner},
        after={"action": "reported", "fix": fix},
        reason="chain_only",
    )
    metrics.DRIFT.labels(kind="chain_only").inc()
    log.warning(
        "drift chain_only: course %d learner %s has on-chain access (source %d) and no "
        "entitlement; fix: %s",
        c.course_onchain_id,
        c.learner,
        c.source,
        fix,
    )


def adopt_chain_access(
    course_onchain_id: int, learner: str, *, factory: sessionmaker[Session], chain: Chain
) -> dict[str, Any]:
    """The "chain_only" fix: record the chain's access of (course, learner) in the database.

    Idempotent (an active entitlement is returned as it is). The entitlement keeps the chain's
    source and its 21-byte digest as `chain_ref`, so a later revoke through the product reaches
    the chain too.

    Raises:
        LookupError: the course is not one of the product's, or the chain grants no access.
    """
    from backend.access.service import grant_access

    learner = chain.w3.to_checksum_address(learner)
    source, digest = access_record(chain, course_onchain_id, learner)
    if source == 0:
        raise LookupError(f"course {course_onchain_id}: {learner} has no access on-chain")
    with session_scope(factory) as s:
        course_id = s.scalar(
            select(CourseChain.course_id).where(
                CourseChain.chain_id == chain.chain_id,
                CourseChain.onchain_id == course_onchain_id,
            )
        )
        if course_id is None:
            raise LookupError(f"on-chain course {course_onchain_id} is not linked to a course")
        ent = grant_access(
            s,
            address=learner,
            course_id=course_id,
            source=OnchainSource.ADOPTED_AS[source],
            order_id=None,
            actor="cli:adopt",
            reason=f"adopted from the chain (on-chain source {source})",
            on_chain=True,
            chain_ref="0x" + digest.ljust(32, b"\0").hex(),
            chain_id=chain.chain_id,
        )
        return {"entitlement_id": ent.id, "source": ent.source, "course_id": course_id}
