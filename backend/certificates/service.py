"""Certificates: the hand-off from learning (course completed) to the chain (mint or voucher).

`request_certificate` is the ONE entry point: it writes the certificate record with its salted
canonical record and record hash, and an outbox message `certificate.requested` for the worker,
in the caller's transaction. Idempotent per (course, learner).

`request_revocation` is the one way the product revokes: it stores the reason and queues
`certificate.revoke` for the worker; the indexer marks the row revoked when the chain says so.
A learner who loses access because the payment was refunded or lost in a card dispute keeps the
token (soulbound) but it is revoked with reason 5 (refunded) or 6 (disputed), on both rails.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from eth_utils import keccak
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access.service import active_entitlement
from backend.audit.service import record as audit
from backend.catalog.models import Course, CourseChain
from backend.catalog.service import get_course
from backend.certificates.models import Certificate, CertificateStatus, RevokeReason
from backend.core.db import utcnow
from backend.core.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from backend.core.security import checksum_address
from backend.outbox.service import Topics, enqueue
from backend.users.models import User

RECORD_VERSION = 1


def canonical_record_bytes(record: dict[str, Any]) -> bytes:
    """The canonical encoding hashed on-chain: UTF-8 JSON, sorted keys, no whitespace."""
    return json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """First 28 bytes of keccak256(canonical record), 0x-hex (the contract's bytes28)."""
    return "0x" + keccak(canonical_record_bytes(record))[:28].hex()


def current_certificate(session: Session, course_id: int, address: str) -> Certificate | None:
    """The pair's certificate: its only one or, after a correction or a holder's removal, the
    latest (the one that still counts, if any)."""
    return session.scalar(
        select(Certificate)
        .where(Certificate.course_id == course_id, Certificate.address == address)
        .order_by(Certificate.id.desc())
        .limit(1)
    )


def token_id_for(onchain_course_id: int, learner: str) -> int:
    """`courseId << 160 | uint160(learner)`: the pair's first certificate (generation 0), which
    is ICourseCertificate.tokenIdFor until a correction or a removal."""
    return (onchain_course_id << 160) | int(learner, 16)


def issuing_registration(course: Course) -> CourseChain | None:
    """The registration a new certificate of `course` is issued under: the course's first chain
    (by chain id), or None while it is registered nowhere (the worker waits for one)."""
    return course.chains[0] if course.chains else None


def current_certificate_on(
    session: Session, chain_id: int, course_id: int, address: str
) -> Certificate | None:
    """The pair's current certificate of chain `chain_id` (at most one), if any."""
    return session.scalar(
        select(Certificate).where(
            Certificate.chain_id == chain_id,
            Certificate.course_id == course_id,
            Certificate.address == address,
            Certificate.status.not_in((CertificateStatus.REVOKED, CertificateStatus.REMOVED)),
        )
    )


def build_record(course: Course, address: str, name: str | None) -> dict[str, Any]:
    """The off-chain certificate record; the random salt keeps the hash unguessable."""
    reg = issuing_registration(course)
    return {
        "version": RECORD_VERSION,
        "course": {
            "id": course.id,
            "onchainId": None if reg is None else reg.onchain_id,
            "title": course.title,
        },
        "issuer": course.provider,
        "learner": address,
        "name": name,
        "grade": "completed",
        "completedAt": utcnow().replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "salt": "0x" + secrets.token_hex(32),
    }


def request_certificate(
    session: Session,
    *,
    address: str,
    course_id: int,
    default_chain_id: int,
    mode: str | None = None,
) -> Certificate:
    """Create the certificate of (address, course) and queue its issuance (idempotent).

    It is issued on the course's first chain, or on `default_chain_id` while the course is
    registered on none (the worker waits for the registration). `mode` overrides the course's
    `certificate_mode` (mint or voucher).

    Raises:
        ForbiddenError: `address` holds no access to the course (only learners are certified;
            the chain refuses them too, NoCourseAccess).
    """
    address = checksum_address(address)
    existing = current_certificate(session, course_id, address)
    if existing is not None:
        return existing
    if active_entitlement(session, address, course_id) is None:
        raise ForbiddenError("only learners with access are certified", code="not_entitled")
    course = get_course(session, course_id)
    mode = mode or course.certificate_mode
    name = session.scalar(select(User.display_name).where(User.address == address))
    record = build_record(course, address, name)
    reg = issuing_registration(course)
    certificate = Certificate(
        chain_id=default_chain_id if reg is None else reg.chain_id,
        course_id=course_id,
        address=address,
        token_id=None if reg is None else token_id_for(reg.onchain_id, address),
        record_hash=record_hash(record),
        record=record,
        mode=mode,
        status=CertificateStatus.REQUESTED,
    )
    try:
        with session.begin_nested():
            session.add(certificate)
    except IntegrityError:
        # A concurrent completion created it first.
        winner = current_certificate(session, course_id, address)
        if winner is None:
            raise
        return winner
    enqueue(
        session,
        Topics.CERTIFICATE_REQUESTED,
        {
            "certificateId": certificate.id,
            "courseId": course_id,
            "chainId": certificate.chain_id,
            "onchainCourseId": None if reg is None else reg.onchain_id,
            "learner": address,
            "recordHash": certificate.record_hash,
            "tokenId": None if certificate.token_id is None else str(certificate.token_id),
            "mode": mode,
        },
        dedupe_key=f"certificate.requested:{certificate.id}",
    )
    audit(
        session,
        actor=f"user:{address}",
        action="certificate.request",
        subject_type="certificate",
        subject_id=certificate.id,
        after={"courseId": course_id, "recordHash": certificate.record_hash, "mode": mode},
    )
    return certificate


def certificates_of(session: Session, address: str) -> Sequence[Certificate]:
    """An address's certificates, newest first."""
    return session.scalars(
        select(Certificate)
        .where(Certificate.address == address)
        .order_by(Certificate.requested_at.desc())
    ).all()


def request_revocation(
    session: Session,
    certificate: Certificate,
    *,
    reason_code: int,
    reason: str,
    actor: str,
) -> bool:
    """Ask for `certificate` to be revoked on-chain with `reason_code` (idempotent, audited).

    Only a minted certificate is revoked; one already revoked, or with a revocation on its way,
    is left as it is. Returns whether a revocation was queued.
    """
    if certificate.status != CertificateStatus.MINTED or certificate.token_id is None:
        return False
    if certificate.revoke_requested_at is not None:
        return False
    now = utcnow()
    # Conditional, so two concurrent requests queue one revocation.
    claimed = session.execute(
        update(Certificate)
        .where(
            Certificate.id == certificate.id,
            Certificate.status == CertificateStatus.MINTED,
            Certificate.revoke_requested_at.is_(None),
        )
        .values(
            revoke_reason_code=reason_code,
            revoke_reason=reason[:500],
            revoke_requested_at=now,
            revoke_requested_by=actor[:120],
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(certificate)
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return False
    enqueue(
        session,
        Topics.CERTIFICATE_REVOKE,
        {"certificateId": certificate.id, "reasonCode": reason_code},
        dedupe_key=f"{Topics.CERTIFICATE_REVOKE}:{certificate.id}",
    )
    audit(
        session,
        actor=actor,
        action="certificate.revoke_request",
        subject_type="certificate",
        subject_id=certificate.id,
        before={"status": certificate.status},
        after={"reasonCode": reason_code, "reason": certificate.revoke_reason},
        reason=reason,
    )
    return True


MAX_LISTED = 500  # one page of a provider's certificates


def revoke_from_product(
    session: Session,
    certificate_id: int,
    *,
    reason_code: int,
    note: str,
    provider: str | None = None,
    admin: str | None = None,
) -> Certificate:
    """A provider (its own courses' certificates only) or an admin (any) revokes a certificate
    with a reason from `RevokeReason.MANUAL` and a note; idempotent: asking again while the
    revocation is on its way, or once it is done, changes nothing.

    Raises:
        NotFoundError: no such certificate, or (for a provider) not one of its courses'.
        InvalidInputError: a reason the product writes itself (refund, dispute, correction).
        ConflictError: the certificate is not on-chain as a live token (code `not_revocable`).
    """
    if reason_code not in RevokeReason.MANUAL:
        raise InvalidInputError(
            f"reason code {reason_code} is not one a person chooses", code="validation_error"
        )
    certificate = session.get(Certificate, certificate_id)
    course = session.get(Course, certificate.course_id) if certificate else None
    if certificate is None or course is None or (admin is None and course.provider != provider):
        raise NotFoundError(f"certificate {certificate_id} does not exist", code="not_found")
    if (
        certificate.revoke_requested_at is not None
        or certificate.status == CertificateStatus.REVOKED
    ):
        return certificate
    if certificate.status != CertificateStatus.MINTED:
        raise ConflictError(
            f"only a certificate on-chain can be revoked; this one is {certificate.status}",
            code="not_revocable",
        )
    actor = f"admin:{admin}" if admin is not None else f"provider:{provider}"
    request_revocation(
        session,
        certificate,
        reason_code=reason_code,
        reason=f"{RevokeReason.label(reason_code)}: {note}",
        actor=actor,
    )
    return certificate


def certificates_of_provider(
    session: Session, provider: str, course_id: int | None = None
) -> Sequence[tuple[Certificate, Course]]:
    """The certificates of a provider's courses (of one course), newest first."""
    stmt = (
        select(Certificate, Course)
        .join(Course, Course.id == Certificate.course_id)
        .where(Course.provider == provider)
    )
    if course_id is not None:
        stmt = stmt.where(Certificate.course_id == course_id)
    rows = session.execute(
        stmt.order_by(Certificate.requested_at.desc(), Certificate.id.desc()).limit(MAX_LISTED)
    ).all()
    return [(cert, course) for cert, course in rows]


def certificate_by_token(session: Session, chain_id: int, token_id: int) -> Certificate:
    """The certificate with token id `token_id` on chain `chain_id`.

    Raises:
        NotFoundError: the product does not know that token.
    """
    certificate = session.scalar(
        select(Certificate).where(
            Certificate.chain_id == chain_id, Certificate.token_id == token_id
        )
    )
    if certificate is None:
        raise NotFoundError(f"no certificate has token id {token_id}", code="not_found")
    return certificate


def revoke_for_lost_access(
    session: Session, *, course_id: int, address: str, reason_code: int, reason: str, actor: str
) -> None:
    """Revoke the certificate of (course, address), if one was issued, after a refund or a lost
    dispute took the learner's access away. A certificate not minted yet is left to fail its
    mint or claim on-chain (the market says no access), so nothing is certified either way."""
    if reason_code not in (RevokeReason.REFUNDED, RevokeReason.DISPUTED):
        raise ValueError(f"not a lost-access reason code: {reason_code}")
    certificate = current_certificate(session, course_id, checksum_address(address))
    if certificate is not None:
        request_revocation(
            session, certificate, reason_code=reason_code, reason=reason, actor=actor
        )
