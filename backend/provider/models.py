"""Providers' public records as the chain holds them (ICourseCertificate.providerRecord)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, BigId, UTCDateTime, utcnow


class ProviderProfile(Base):
    """A provider's name, website domain and the platform's verification, mirrored by the
    indexer from `ProviderProfileSet` and `ProviderVerificationSet` (the chain is the authority:
    the product asks for changes with transactions, it never writes this table itself)."""

    __tablename__ = "provider_profiles"

    # A record lives in one chain's certificate contract: the same provider may hold one per chain.
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
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


class VerificationOutcome:
    """How an admin's verification request ended (None while the worker is on it)."""

    SENT = "sent"  # the transaction was mined; the indexer mirrors its event
    ALREADY = "already"  # the chain already said so: nothing was sent
    # The provider changed its record after the admin reviewed it: verify the new one instead.
    PROFILE_CHANGED = "profile_changed"
    SUPERSEDED = "superseded"  # a newer request for the same provider was made first


class ProviderVerificationRequest(Base):
    """An admin's decision to verify or unverify a provider, until the worker has put it
    on-chain (`verifyProvider(provider, profileHash)` / `unverifyProvider(provider)` with the
    operator key, which holds VERIFIER_ROLE). The result reaches `provider_profiles` through the
    indexer, like any other change of the record."""

    __tablename__ = "provider_verification_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)  # the chain whose record it is about
    provider: Mapped[str] = mapped_column(Address, index=True)
    verify: Mapped[bool] = mapped_column(Boolean)
    # The reviewed record's hash (verify only): the chain refuses it if the record changed.
    profile_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    requested_by: Mapped[str] = mapped_column(Address)
    reason: Mapped[str] = mapped_column(String(500))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    outcome: Mapped[str | None] = mapped_column(String(20), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
