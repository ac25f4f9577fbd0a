"""Certificate bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from backend.core.schemas import Amount, ApiInput, ApiModel


class CertificateOut(ApiModel):
    """A certificate and its off-chain record (the record hash is what the chain stores)."""

    id: int
    course_id: int
    address: str
    chain_id: int  # the chain it is (to be) issued on: token ids repeat across chains
    token_id: Amount | None
    record_hash: str
    record: dict[str, Any]
    mode: str
    status: str
    tx_hash: str | None
    voucher_signature: str | None
    voucher_deadline: Amount | None
    requested_at: datetime
    revoked_at: datetime | None = None
    # 1 issued in error, 2 academic misconduct, 3 course withdrawn, 4 learner request,
    # 5 payment refunded, 6 payment disputed, 7 corrected (ICourseCertificate).
    revoke_reason_code: int | None = None
    revoke_reason: str | None = None  # the reason in words, and the note of who revoked it
    revoke_requested_at: datetime | None = None
    # Status "removed": when the holder removed it; a correction: the certificate replacing it.
    removed_at: datetime | None = None
    replaced_by_token_id: Amount | None = None


class IssuedCertificateOut(CertificateOut):
    """A certificate as its course's provider (or an admin) sees it."""

    course_title: str
    revoke_requested_by: str | None = None  # "provider:0x..", "admin:0x..", "system:.."

    @classmethod
    def of(cls, certificate: Any, course: Any) -> IssuedCertificateOut:
        """From a certificate row and its course."""
        base = CertificateOut.model_validate(certificate, from_attributes=True)
        return cls(
            **base.model_dump(),
            course_title=course.title,
            revoke_requested_by=certificate.revoke_requested_by,
        )


class CertificateRevokeIn(ApiInput):
    """Why a certificate is revoked: a reason a person may choose and a note (both on the
    audit log; the code goes on-chain)."""

    # 1 issued in error, 2 academic misconduct, 3 course withdrawn, 4 learner request.
    reason_code: Literal[1, 2, 3, 4]
    note: str = Field(min_length=3, max_length=400)
