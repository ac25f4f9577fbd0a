"""Providers' public records: the rules the certificate contract applies to them, the hash the
platform's verification is bound to, and the mirrored record."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from backend.chain.tx import profile_hash
from backend.core.errors import NotFoundError
from backend.core.security import checksum_address
from backend.provider.models import ProviderProfile

__all__ = ["DOMAIN_RE", "MAX_NAME_BYTES", "get_profile", "is_domain", "profile_hash"]

MAX_NAME_BYTES = 64  # CourseCertificate.MAX_PROVIDER_NAME_LENGTH
# Text.isDomain: lowercase labels of a-z, 0-9 and inner hyphens, 1..63 bytes, two or more.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")


def is_domain(domain: str) -> bool:
    """Whether the certificate contract accepts `domain` (a lowercase host name, 253 bytes at
    most, at least two labels)."""
    return len(domain) <= 253 and DOMAIN_RE.fullmatch(domain) is not None


def get_profile(session: Session, chain_id: int, address: str) -> ProviderProfile:
    """The provider's record as chain `chain_id` holds it (mirrored by that chain's indexer).

    Raises:
        NotFoundError: the provider never set one (or the indexer has not seen it yet).
    """
    profile = session.get(ProviderProfile, (chain_id, checksum_address(address)))
    if profile is None:
        raise NotFoundError("this provider has no public record", code="no_provider_profile")
    return profile
