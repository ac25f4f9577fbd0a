"""Providers' public records as the chain holds them (ICourseCertificate.providerRecord)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, UTCDateTime, utcnow


class ProviderProfile(Base):
    """A provider's name, website domain and the platform's verification, mirrored by the
    indexer from `ProviderProfileSet` and `ProviderVerificationSet` (the chain is the authority:
    the product asks for changes with transactions, it never writes this table itself)."""

    __tablename__ = "provider_profiles"

    address: Mapped[str] = mapped_column(Address, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(253))
    # keccak256(abi.encode(name, domain)): what `verifyProvider` takes for this record.
    profile_hash: Mapped[str] = mapped_column(String(66))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    verified_by: Mapped[str | None] = mapped_column(Address, default=None)
    # The last event that changed the row.
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
