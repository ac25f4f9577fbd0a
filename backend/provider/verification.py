"""The platform's verification of providers, as the admin asks for it.

The chain is the authority on who is verified (`CourseCertificate.verifyProvider`, VERIFIER_ROLE):
an admin's decision becomes a `provider_verification_requests` row, an audit entry and an outbox
message in the request's transaction; the worker sends the transaction (`backend/provider/
onchain.py`) and the indexer mirrors its event into `provider_profiles`.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.audit import service as audit
from backend.core.errors import ConflictError, InvalidInputError
from backend.outbox.service import Topics, enqueue
from backend.provider.models import ProviderProfile, ProviderVerificationRequest
from backend.provider.profiles import get_profile

MAX_PROVIDERS = 500  # one page of the admin's review list


def latest_request(
    session: Session, chain_id: int, provider: str
) -> ProviderVerificationRequest | None:
    """The provider's newest verification request about its record on `chain_id`, if any."""
    return session.scalar(
        select(ProviderVerificationRequest)
        .where(
            ProviderVerificationRequest.chain_id == chain_id,
            ProviderVerificationRequest.provider == provider,
        )
        .order_by(ProviderVerificationRequest.id.desc())
        .limit(1)
    )


def request_verification(
    session: Session,
    *,
    chain_id: int,
    admin: str,
    provider: str,
    verify: bool,
    profile_hash: str | None,
    reason: str,
) -> ProviderVerificationRequest | None:
    """Ask for `provider`'s record on `chain_id` to be verified (bound to the reviewed
    `profile_hash`) or unverified.

    Idempotent: when the newest request already asks for the same, or nothing is pending and the
    mirrored record already says so, nothing new is queued and the newest request (or None) is
    returned.

    Raises:
        NotFoundError: the provider has no public record.
        InvalidInputError: verifying without the reviewed record's hash.
        ConflictError: the record changed since the admin reviewed it (code `profile_changed`).
    """
    profile = get_profile(session, chain_id, provider)
    if verify:
        if profile_hash is None:
            raise InvalidInputError(
                "profileHash (the reviewed record's hash) is required to verify",
                code="profile_hash_required",
            )
        if profile_hash != profile.profile_hash:
            raise ConflictError(
                "the provider changed its public record after it was reviewed; review it again",
                code="profile_changed",
            )
    wanted_hash = profile.profile_hash if verify else None
    latest = latest_request(session, chain_id, profile.address)
    pending = latest is not None and latest.outcome is None
    if pending and latest is not None:
        if latest.verify == verify and latest.profile_hash == wanted_hash:
            return latest
    elif profile.verified == verify:
        return latest  # the chain already says so
    request = ProviderVerificationRequest(
        chain_id=chain_id,
        provider=profile.address,
        verify=verify,
        profile_hash=wanted_hash,
        requested_by=admin,
        reason=reason,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor=f"admin:{admin}",
        action="provider.verify_requested" if verify else "provider.unverify_requested",
        subject_type="provider",
        subject_id=profile.address,
        before={"verified": profile.verified, "profileHash": profile.profile_hash},
        after={"verified": verify, "profileHash": wanted_hash, "requestId": request.id},
        reason=reason,
    )
    enqueue(
        session,
        Topics.PROVIDER_VERIFICATION,
        {"requestId": request.id},
        dedupe_key=f"provider.verification:{request.id}",
    )
    return request


def providers_for_review(
    session: Session, chain_id: int
) -> list[tuple[ProviderProfile, ProviderVerificationRequest | None]]:
    """Every public record on `chain_id` (unverified first, newest change first) with its newest
    request."""
    newest = (
        select(func.max(ProviderVerificationRequest.id).label("id"))
        .where(ProviderVerificationRequest.chain_id == chain_id)
        .group_by(ProviderVerificationRequest.provider)
        .subquery()
    )
    requests = {
        r.provider: r
        for r in session.scalars(
            select(ProviderVerificationRequest).where(
                ProviderVerificationRequest.id.in_(select(newest.c.id))
            )
        )
    }
    profiles = session.scalars(
        select(ProviderProfile)
        .where(ProviderProfile.chain_id == chain_id)
        .order_by(ProviderProfile.verified, ProviderProfile.updated_at.desc())
        .limit(MAX_PROVIDERS)
    ).all()
    return [(p, requests.get(p.address)) for p in profiles]
