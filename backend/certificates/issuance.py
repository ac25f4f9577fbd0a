"""Issuing a requested certificate: mint it with the issuer key, or sign a claim voucher.

Idempotent at every step. Before sending anything the chain is asked whether the certificate
exists (`verify(tokenIdFor)`); the mint goes through the sender under a key derived from the token
id, so a re-run while the first transaction is still pending waits for that transaction instead
of sending another; its hash is stored on the certificate row before the receipt is awaited; and
the contract itself refuses a second certificate for (learner, course).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.access.models import Entitlement
from backend.catalog.models import CertificateMode, Course
from backend.certificates.models import Certificate, CertificateStatus
from backend.certificates.service import token_id_for
from backend.certificates.vouchers import record_hash28, sign_voucher
from backend.core.config import WorkerSettings, get_settings
from backend.core.db import session_scope, utcnow
from backend.core.errors import (
    OtherChainError,
    PermanentError,
    RetryableError,
    TxRevertedError,
    TxWouldRevertError,
)
from backend.worker.chain import Chain, certificate_on_chain, has_access
from backend.worker.sender import TxSender

log = logging.getLogger(__name__)

# A voucher closer than this to its deadline is re-signed rather than handed out again.
VOUCHER_RENEW_MARGIN = 24 * 3600


@dataclass(frozen=True)
class CertificateJob:
    """What the worker needs of a certificate row, read in one short transaction."""

    id: int
    learner: str
    course_onchain_id: int
    record_hash: bytes
    mode: str
    status: str
    tx_hash: str | None
    voucher_deadline: int | None
    entitled: bool  # an active entitlement of (course, learner) in the database


def _load(
    factory: sessionmaker[Session], certificate_id: int, chain_id: int
) -> CertificateJob | None:
    with session_scope(factory) as s:
        cert = s.get(Certificate, certificate_id)
        if cert is None:
            raise PermanentError(f"certificate {certificate_id} does not exist")
        if cert.status in (CertificateStatus.MINTED, CertificateStatus.REVOKED):
            return None
        if cert.chain_id != chain_id:
            # Issued on another chain: that network's worker sends it.
            raise OtherChainError(
                cert.chain_id,
                f"certificate {certificate_id} is issued on chain {cert.chain_id}, not {chain_id}",
            )
        course = s.get(Course, cert.course_id)
        onchain_id = None if course is None else course.onchain_id_on(chain_id)
        if onchain_id is None:
            # The course gets its on-chain id when the indexer sees CourseCreated: wait for it.
            raise RetryableError(f"course {cert.course_id} has no on-chain id on {chain_id} yet")
        entitled = s.scalar(
            select(Entitlement.id).where(
                Entitlement.course_id == cert.course_id,
                Entitlement.address == cert.address,
                Entitlement.revoked_at.is_(None),
            )
        )
        return CertificateJob(
            id=cert.id,
            learner=cert.address,
            course_onchain_id=onchain_id,
            record_hash=record_hash28(cert.record_hash),
            mode=cert.mode,
            status=cert.status,
            tx_hash=cert.tx_hash,
            voucher_deadline=cert.voucher_deadline,
            entitled=entitled is not None,
        )


def _update(
    factory: sessionmaker[Session],
    certificate_id: int,
    from_statuses: tuple[str, ...],
    **values: Any,
) -> bool:
    """Move the row forward only from `from_statuses` (the indexer may have got there first)."""
    with session_scope(factory) as s:
        result = s.execute(
            update(Certificate)
            .where(Certificate.id == certificate_id, Certificate.status.in_(from_statuses))
            .values(updated_at=utcnow(), **values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


OPEN = (CertificateStatus.REQUESTED, CertificateStatus.MINTING, CertificateStatus.CLAIMABLE)


def mint_key(chain: Chain, token_id: int) -> str:
    """The sender's operation key of minting `token_id` (one certificate, one operation)."""
    return f"mint:{chain.certificate.address}:{token_id}"


def issue_certificate(
    certificate_id: int,
    *,
    factory: sessionmaker[Session],
    chain: Chain,
    sender: TxSender,
    settings: WorkerSettings,
) -> dict[str, Any]:
    """Mint or voucher one certificate; returns what happened (for the job's result).

    Raises:
        RetryableError: try again later (includes `TxNotMinedError`).
        PermanentError: the certificate cannot be issued as configured.
    """
    job = _load(factory, certificate_id, chain.chain_id)
    if job is None:
        return {"certificate_id": certificate_id, "outcome": "already_final"}
    token_id = token_id_for(job.course_onchain_id, job.learner)

    onchain = certificate_on_chain(chain, token_id)
    if onchain is not None:
        # Minted by an earlier run that died before recording it (settle its transaction row
        # now), or claimed with a voucher.
        sender.settle_operation(mint_key(chain, token_id))
        _update(
            factory,
            job.id,
            OPEN,
            status=CertificateStatus.MINTED,
            token_id=token_id,
        )
        return {"certificate_id": job.id, "outcome": "already_on_chain", "token_id": str(token_id)}

    # The contract certifies only learners who hold access on-chain (NoCourseAccess).
    if not has_access(chain, job.course_onchain_id, job.learner):
        if job.entitled:
            # A free claim, grant or card payment whose grantAccess is still on its way.
            raise RetryableError(f"certificate {job.id}: access not on-chain yet")
        raise PermanentError(f"certificate {job.id}: the learner has no access to the course")

    if job.mode == CertificateMode.VOUCHER:
        return _issue_voucher(job, token_id, factory=factory, chain=chain, settings=settings)
    return _mint(job, token_id, factory=factory, chain=chain, sender=sender, settings=settings)


def _issue_voucher(
    job: CertificateJob,
    token_id: int,
    *,
    factory: sessionmaker[Session],
    chain: Chain,
    settings: WorkerSettings,
) -> dict[str, Any]:
    now = int(time.time())
    if (
        job.status == CertificateStatus.CLAIMABLE
        and job.voucher_deadline is not None
        and job.voucher_deadline > now + VOUCHER_RENEW_MARGIN
    ):
        return {"certificate_id": job.id, "outcome": "voucher_exists"}
    voucher = sign_voucher(
        chain.operator,
        chain_id=chain.chain_id,
        contract=chain.certificate.address,
        learner=job.learner,
        course_id=job.course_onchain_id,
        record_hash=job.record_hash,
        deadline=now + settings.voucher_ttl,
    )
    _update(
        factory,
        job.id,
        OPEN,
        status=CertificateStatus.CLAIMABLE,
        token_id=token_id,
        voucher_signature=voucher.signature,
        voucher_deadline=voucher.deadline,
    )
    log.info("certificate %d: voucher signed, claimable until %d", job.id, voucher.deadline)
    return {"certificate_id": job.id, "outcome": "voucher_signed", "deadline": voucher.deadline}


def _mint(
    job: CertificateJob,
    token_id: int,
    *,
    factory: sessionmaker[Session],
    chain: Chain,
    sender: TxSender,
    settings: WorkerSettings,
) -> dict[str, Any]:
    contract = chain.certificate
    _update(
        factory,
        job.id,
        (CertificateStatus.REQUESTED, CertificateStatus.CLAIMABLE),
        status=CertificateStatus.MINTING,
        token_id=token_id,
    )
    data = contract.encode_abi("mint", args=[job.learner, job.course_onchain_id, job.record_hash])
    key = sender.fresh_key(mint_key(chain, token_id))
    try:
        tx = sender.send(key, contract.address, data)
    except TxWouldRevertError:
        # Already certified meanwhile (a claim, another worker)? Then that is success.
        if certificate_on_chain(chain, token_id) is not None:
            _update(factory, job.id, OPEN, status=CertificateStatus.MINTED, token_id=token_id)
            return {"certificate_id": job.id, "outcome": "already_on_chain"}
        raise
    # The hash is on the row before anything waits: a crash from here on leaves a row that
    # points at the transaction, and the re-run waits for that same transaction.
    _update(factory, job.id, OPEN, tx_hash=tx.tx_hash)
    if settings.test_pause_after_send and get_settings().env != "production":
        time.sleep(settings.test_pause_after_send)  # the crash test's window
    try:
        mined = sender.wait(tx, timeout=settings.receipt_timeout)
    except TxRevertedError:
        if certificate_on_chain(chain, token_id) is not None:
            _update(factory, job.id, OPEN, status=CertificateStatus.MINTED, token_id=token_id)
            return {"certificate_id": job.id, "outcome": "already_on_chain"}
        raise
    _update(
        factory,
        job.id,
        OPEN,
        status=CertificateStatus.MINTED,
        token_id=token_id,
        tx_hash=mined.tx_hash,
    )
    log.info("certificate %d minted in %s", job.id, mined.tx_hash)
    return {
        "certificate_id": job.id,
        "outcome": "minted",
        "tx_hash": mined.tx_hash,
        "token_id": str(token_id),
    }
