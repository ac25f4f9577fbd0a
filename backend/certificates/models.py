"""Certificates: the off-chain record (salted) whose hash goes on-chain as a soulbound token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.catalog.models import CertificateMode
from backend.core.db import Address, Base, JsonType, TokenAmount, UTCDateTime, utcnow


class CertificateStatus:
    """requested -> minting -> minted (mode mint) | claimable (mode voucher); -> revoked (also
    when corrected: `replaced_by_token_id` names the new one) | removed (by its holder)."""

    REQUESTED = "requested"
    MINTING = "minting"
    MINTED = "minted"
    CLAIMABLE = "claimable"
    REVOKED = "revoked"
    REMOVED = "removed"


class RevokeReason:
    """ICourseCertificate's revocation reason codes (the contract takes any uint8)."""

    ISSUED_IN_ERROR = 1
    ACADEMIC_MISCONDUCT = 2
    COURSE_WITHDRAWN = 3
    LEARNER_REQUEST = 4
    REFUNDED = 5  # the payment for the course was refunded (either rail)
    DISPUTED = 6  # the card payment was disputed and the dispute lost
    CORRECTED = 7  # replaced by a corrected certificate (`reissue` writes it)

    LABELS = {
        ISSUED_IN_ERROR: "issued in error",
        ACADEMIC_MISCONDUCT: "academic misconduct",
        COURSE_WITHDRAWN: "course withdrawn",
        LEARNER_REQUEST: "learner request",
        REFUNDED: "payment refunded",
        DISPUTED: "payment disputed",
        CORRECTED: "corrected",
    }
    # What a provider or an admin may choose from the product (the others the product writes
    # itself: refunds, disputes and corrections).
    MANUAL = (ISSUED_IN_ERROR, ACADEMIC_MISCONDUCT, COURSE_WITHDRAWN, LEARNER_REQUEST)

    @classmethod
    def label(cls, code: int) -> str:
        """A reason code in words ("reason code N" for codes the product does not name)."""
        return cls.LABELS.get(code, f"reason code {code}")


# The certificates of a (course, address) pair that still count: at most one at a time.
CURRENT = "status NOT IN ('revoked', 'removed')"


class Certificate(Base):
    """A certificate of (course, address). A pair may hold several over time (a correction
    replaces one; the holder may remove one and be certified again), at most one current."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint(
            "status IN ('requested', 'minting', 'minted', 'claimable', 'revoked', 'removed')",
            name="status",
        ),
        CheckConstraint("mode IN ('mint', 'voucher')", name="mode"),
        Index("ix_certificates_address", "address"),
        # A token id is unique on its chain; the same id on another chain is another token.
        Index("ix_certificates_chain_id_token_id", "chain_id", "token_id", unique=True),
        Index(
            "uq_certificates_current",
            "chain_id",
            "course_id",
            "address",
            unique=True,
            postgresql_where=text(CURRENT),
            sqlite_where=text(CURRENT),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The chain it is (to be) issued on: its token id is that chain's.
    chain_id: Mapped[int] = mapped_column(BigInteger)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    address: Mapped[str] = mapped_column(Address)
    # generation << 224 | courseId << 160 | learner; unknown until the course has an on-chain id.
    token_id: Mapped[int | None] = mapped_column(TokenAmount, default=None)
    record_hash: Mapped[str] = mapped_column(String(58))  # 0x + 28 bytes
    record: Mapped[dict[str, Any]] = mapped_column(JsonType)
    mode: Mapped[str] = mapped_column(String(8), default=CertificateMode.MINT)
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.REQUESTED)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    voucher_signature: Mapped[str | None] = mapped_column(String(300), default=None)
    voucher_deadline: Mapped[int | None] = mapped_column(TokenAmount, default=None)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The on-chain reason code (see RevokeReason; the indexer sets it from CertificateRevoked)
    # and the text given when the product asked for the revocation (the chain holds the code).
    revoke_reason_code: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    revoke_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # A revocation the product asked for and the indexer has not seen on-chain yet.
    revoke_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoke_requested_by: Mapped[str | None] = mapped_column(String(120), default=None)
    revoke_tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    # Set by the indexer: the holder burned it (CertificateRemoved); the certificate that
    # corrects this one (CertificateReplaced).
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    replaced_by_token_id: Mapped[int | None] = mapped_column(TokenAmount, default=None)
