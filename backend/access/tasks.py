"""Mirroring entitlements on-chain: `CourseMarket.grantAccess` / `revokeAccess`.

The database decides (`backend.access.service` writes the entitlement and, in the same
transaction, an `access.chain_grant` / `access.chain_revoke` outbox message); the chain follows
so `hasAccess` gives the same answer for every source: card payments, free claims through the
API and admin grants (on-chain purchases are on-chain already). Idempotent: the chain is asked
first and nothing is sent when it already agrees; sends go through the sender under a key per
entitlement `ref`; the contract refuses a second grant (`AlreadyHasAccess`), and a refused
estimate is re-judged against the chain. The entitlement's `chain_status` records the outcome.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from celery import Task
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.access.models import ChainStatus, Entitlement, OnchainSource
from backend.access.reconcile import reconcile_access as reconcile
from backend.catalog.models import Course
from backend.core.config import get_settings
from backend.core.db import process_session_factory, session_scope, utcnow
from backend.core.errors import (
    NotDeployedError,
    OtherChainError,
    PermanentError,
    RetryableError,
    TxRevertedError,
    TxWouldRevertError,
)
from backend.worker.celery_app import app
from backend.worker.chain import (
    Chain,
    access_record,
    configured_chain_ids,
    get_chain,
    has_access,
)
from backend.worker.sender import TxSender
from backend.worker.tasks import TuitionTask, publish, send_on_chain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntitlementJob:
    """What the worker needs of an entitlement, read in one short transaction."""

    id: int
    course_onchain_id: int
    learner: str
    source: str
    ref: bytes  # bytes32
    active: bool  # this entitlement is active
    pair_active: bool  # any active entitlement of (course, learner)
    pair_digests: frozenset[bytes]  # the on-chain digests of every record of the pair


def ref_bytes(ref: str) -> bytes:
    """The bytes32 `ref` of a 0x-hex string."""
    raw = bytes.fromhex(ref.removeprefix("0x"))
    if len(raw) != 32:
        raise PermanentError(f"ref {ref!r} is not bytes32")
    return raw


def load_entitlement(
    factory: sessionmaker[Session], entitlement_id: int, chain_id: int
) -> EntitlementJob:
    """Entitlement `entitlement_id` with what the comparison with chain `chain_id` needs."""
    with session_scope(factory) as s:
        ent = s.get(Entitlement, entitlement_id)
        if ent is None:
            raise PermanentError(f"entitlement {entitlement_id} does not exist")
        if ent.source not in OnchainSource.RECORDED_AS:
            raise PermanentError(f"entitlement {entitlement_id} is a {ent.source} purchase")
        if ent.chain_ref is None:
            raise PermanentError(f"entitlement {entitlement_id} has no on-chain ref")
        if ent.chain_id is not None and ent.chain_id != chain_id:
            # Recorded on another chain: kept in step there.
            raise OtherChainError(
                ent.chain_id,
                f"entitlement {entitlement_id} is recorded on chain {ent.chain_id}, not {chain_id}",
            )
        course = s.get(Course, ent.course_id)
        onchain_id = None if course is None else course.onchain_id_on(chain_id)
        if onchain_id is None:
            raise RetryableError(f"course {ent.course_id} has no on-chain id on {chain_id} yet")
        pair = s.execute(
            select(Entitlement.revoked_at, Entitlement.chain_ref).where(
                Entitlement.course_id == ent.course_id, Entitlement.address == ent.address
            )
        ).all()
        return EntitlementJob(
            id=ent.id,
            course_onchain_id=onchain_id,
            learner=ent.address,
            source=ent.source,
            ref=ref_bytes(ent.chain_ref),
            active=ent.revoked_at is None,
            pair_active=any(revoked_at is None for revoked_at, _ in pair),
            pair_digests=frozenset(ref_bytes(ref)[:21] for _, ref in pair if ref),
        )


def mark(
    factory: sessionmaker[Session],
    entitlement_id: int,
    status: str,
    *,
    tx_hash: str | None = None,
    error: str | None = None,
    chain_id: int | None = None,
) -> None:
    """Record where the entitlement's on-chain mirror stands (and, once recorded, on which
    chain)."""
    values: dict[str, Any] = {
        "chain_status": status,
        "chain_error": error[:500] if error else None,
        "chain_updated_at": utcnow(),
    }
    if tx_hash is not None:
        values["chain_tx_hash"] = tx_hash
    if chain_id is not None:
        values["chain_id"] = chain_id
    with session_scope(factory) as s:
        s.execute(update(Entitlement).where(Entitlement.id == entitlement_id).values(**values))


def record_grant(
    entitlement_id: int, *, factory: sessionmaker[Session], chain: Chain, sender: TxSender
) -> dict[str, Any]:
    """grantAccess(course, learner, Card|Grant, ref) unless the chain already grants access."""
    job = load_entitlement(factory, entitlement_id, chain.chain_id)
    result: dict[str, Any] = {"entitlement_id": job.id}
    if not job.active:
        # Revoked before we got here: the revoke side handles the rest.
        return {**result, "outcome": "not_entitled"}
    market = chain.market
    base = f"grant:{market.address}:{job.ref.hex()}"
    if has_access(chain, job.course_onchain_id, job.learner):
        sender.settle_operation(base)
        mark(factory, job.id, ChainStatus.RECORDED, chain_id=chain.chain_id)
        return {**result, "outcome": "already_on_chain"}
    data = market.encode_abi(
        "grantAccess",
        args=[job.course_onchain_id, job.learner, OnchainSource.RECORDED_AS[job.source], job.ref],
    )
    try:
        tx = sender.send(sender.fresh_key(base), market.address, data)
        mined = sender.wait(tx)
    except (TxWouldRevertError, TxRevertedError) as exc:
        if has_access(chain, job.course_onchain_id, job.learner):
            mark(factory, job.id, ChainStatus.RECORDED, chain_id=chain.chain_id)
            return {**result, "outcome": "already_on_chain"}
        mark(factory, job.id, ChainStatus.FAILED, error=str(exc))
        raise
    mark(factory, job.id, ChainStatus.RECORDED, tx_hash=mined.tx_hash, chain_id=chain.chain_id)
    log.info("entitlement %s: access recorded on-chain in %s", job.id, mined.tx_hash)
    return {**result, "outcome": "granted", "tx_hash": mined.tx_hash}


def record_revoke(
    entitlement_id: int, *, factory: sessionmaker[Session], chain: Chain, sender: TxSender
) -> dict[str, Any]:
    """revokeAccess(course, learner, ref) when the on-chain access is a record the product made
    for this (course, learner): this entitlement's, or an earlier one's the chain kept when this
    one found access already there."""
    job = load_entitlement(factory, entitlement_id, chain.chain_id)
    result: dict[str, Any] = {"entitlement_id": job.id}
    if job.active:
        return {**result, "outcome": "still_active"}
    if job.pair_active:
        # Entitled again (another order, a grant): the chain keeps access for that one.
        mark(factory, job.id, ChainStatus.REVOKED)
        return {**result, "outcome": "still_entitled"}
    market = chain.market
    base = f"revoke:{market.address}:{job.ref.hex()}"
    source, digest = access_record(chain, job.course_onchain_id, job.learner)
    if source == 0:
        sender.settle_operation(base)
        mark(factory, job.id, ChainStatus.REVOKED)
        return {**result, "outcome": "already_revoked"}
    if source not in (OnchainSource.CARD, OnchainSource.GRANT) or digest not in job.pair_digests:
        # Bought on-chain since, or a record the product never made: not ours to revoke.
        mark(factory, job.id, ChainStatus.REVOKED)
        return {**result, "outcome": "not_this_record", "source": source}
    data = market.encode_abi("revokeAccess", args=[job.course_onchain_id, job.learner, job.ref])
    try:
        tx = sender.send(sender.fresh_key(base), market.address, data)
        mined = sender.wait(tx)
    except (TxWouldRevertError, TxRevertedError) as exc:
        if not has_access(chain, job.course_onchain_id, job.learner):
            mark(factory, job.id, ChainStatus.REVOKED)
            return {**result, "outcome": "already_revoked"}
        mark(factory, job.id, ChainStatus.FAILED, error=str(exc))
        raise
    mark(factory, job.id, ChainStatus.REVOKED, tx_hash=mined.tx_hash)
    log.info("entitlement %s: access revoked on-chain in %s", job.id, mined.tx_hash)
    return {**result, "outcome": "revoked", "tx_hash": mined.tx_hash}


# ---------------------------------------------------------------------- Celery tasks


@app.task(base=TuitionTask, bind=True, name="tuition.record_access_grant")
def record_access_grant(
    self: Task, entitlement_id: int, job_id: int | None = None
) -> dict[str, Any]:
    """Record an entitlement on-chain: grantAccess(course, learner, Card|Grant, ref)."""
    return send_on_chain(self, record_grant, entitlement_id)


@app.task(base=TuitionTask, bind=True, name="tuition.record_access_revoke")
def record_access_revoke(
    self: Task, entitlement_id: int, job_id: int | None = None
) -> dict[str, Any]:
    """Record the end of an entitlement on-chain: revokeAccess(course, learner, ref)."""
    return send_on_chain(self, record_revoke, entitlement_id)


@app.task(base=TuitionTask, bind=True, name="tuition.reconcile_access", max_retries=2)
def reconcile_access(self: Task, batch: int | None = None) -> dict[str, Any]:
    """Compare a batch of DB entitlements with on-chain access, on each configured chain
    separately (its own records, its own cursors); report and fix drift.

    Returns TUITION_NETWORK's summary, with every other chain's under `chains`.
    """
    summaries: dict[int, dict[str, Any]] = {}
    for chain_id in configured_chain_ids():
        try:
            chain = get_chain(chain_id=chain_id)
        except NotDeployedError as exc:
            log.info("reconcile on chain %s: %s", chain_id, exc)
            continue
        summaries[chain_id] = reconcile(
            factory=process_session_factory(),
            chain=chain,
            settings=get_settings().worker,
            publish=publish,
            batch=batch,
        )
    first, *others = [*configured_chain_ids()]
    summary = dict(summaries.get(first, {}))
    if others:
        summary["chains"] = {str(c): summaries[c] for c in others if c in summaries}
    return summary
