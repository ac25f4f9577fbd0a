"""Certificate bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.core.schemas import Amount, ApiModel


class CertificateOut(ApiModel):
    """A certificate and its off-chain record (the record hash is what the chain stores)."""

    id: int
    course_id: int
    address: str
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
    revoke_requested_at: datetime | None = None
    # Status "removed": when the holder removed it; a correction: the certificate replacing it.
    removed_at: datetime | None = None
    replaced_by_token_id: Amount | None = None
