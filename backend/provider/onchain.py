"""Putting an admin's verification of a provider on-chain (the worker's side).

`verifyProvider(provider, profileHash)` or `unverifyProvider(provider)` with the operator key
(VERIFIER_ROLE). Idempotent: the chain is asked first (already so: nothing is sent), the send
goes through the sender under a per-request key (a re-run waits for the same transaction), and
only the provider's newest request is acted on, so whatever order the worker runs them in, the
chain ends as the admin last decided. `provider_profiles` is not touched here: the indexer
mirrors `ProviderVerificationSet`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from backend.core.db import session_scope, utcnow
from backend.core.errors import (
    OtherChainError,
    PermanentError,
    TxRevertedError,
    TxWouldRevertError,
)
from backend.provider.models import ProviderVerificationRequest, VerificationOutcome
from backend.provider.profiles import profile_hash
from backend.worker.chain import Chain, call_view
from backend.worker.sender import TxSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerificationJob:
    """What the worker needs of a request."""

    id: int
    provider: str
    verify: bool
    profile_hash: str | None


@dataclass(frozen=True)
class OnChainRecord:
    """`providerRecord(provider)`: the hash of its name and domain (None without a record)."""

    profile_hash: str | None
    verified: bool


def _load(factory: sessionmaker[Session], request_id: int, chain_id: int) -> VerificationJob | None:
    with session_scope(factory) as s:
        request = s.get(ProviderVerificationRequest, request_id)
        if request is None:
            raise PermanentError(f"verification request {request_id} does not exist")
        if request.outcome is not None:
            return None
        if request.chain_id != chain_id:
            # About another chain's record: sent there.
            raise OtherChainError(
                request.chain_id,
                f"verification request {request_id} is about chain {request.chain_id}, "
                f"not {chain_id}",
            )
        newer = s.scalar(
            select(ProviderVerificationRequest.id).where(
                ProviderVerificationRequest.chain_id == request.chain_id,
                ProviderVerificationRequest.provider == request.provider,
                ProviderVerificationRequest.id > request.id,
            )
        )
        if newer is not None:
            request.outcome = VerificationOutcome.SUPERSEDED
            request.completed_at = utcnow()
            return None
        return VerificationJob(request.id, request.provider, request.verify, request.profile_hash)


def _finish(
    factory: sessionmaker[Session], request_id: int, outcome: str, tx_hash: str | None = None
) -> None:
    with session_scope(factory) as s:
        values: dict[str, Any] = {"outcome": outcome, "completed_at": utcnow()}
        if tx_hash is not None:
            values["tx_hash"] = tx_hash
        s.execute(
            update(ProviderVerificationRequest)
            .where(ProviderVerificationRequest.id == request_id)
            .values(**values)
        )


def record_on_chain(chain: Chain, provider: str) -> OnChainRecord:
    """The provider's record as the certificate contract holds it now."""
    name, domain, verified, _at, _by = call_view(
        chain.certificate.functions.providerRecord(Web3.to_checksum_address(provider))
    )
    return OnChainRecord(profile_hash(name, domain) if name else None, bool(verified))


def _settled(job: VerificationJob, record: OnChainRecord) -> str | None:
    """The outcome if nothing needs sending: the chain already agrees, or cannot be asked."""
    if not job.verify:
        return VerificationOutcome.ALREADY if not record.verified else None
    if record.profile_hash != job.profile_hash:
        return VerificationOutcome.PROFILE_CHANGED
    return VerificationOutcome.ALREADY if record.verified else None


def verification_key(chain: Chain, request_id: int) -> str:
    """The sender's operation key of request `request_id`."""
    return f"provider-verification:{chain.certificate.address}:{request_id}"


def put_verification_on_chain(
    request_id: int, *, factory: sessionmaker[Session], chain: Chain, sender: TxSender
) -> dict[str, Any]:
    """Send the transaction an admin's verification request asks for; returns what happened.

    Raises:
        RetryableError: try again later (includes `TxNotMinedError`).
        PermanentError: the request does not exist, or the chain refused the transaction for a
            reason other than the record having changed (the operator key lacks the role).
    """
    job = _load(factory, request_id, chain.chain_id)
    if job is None:
        return {"request_id": request_id, "outcome": "nothing_to_do"}
    base = verification_key(chain, job.id)
    settled = _settled(job, record_on_chain(chain, job.provider))
    if settled is not None:
        sender.settle_operation(base)
        _finish(factory, job.id, settled)
        return {"request_id": job.id, "outcome": settled}
    contract = chain.certificate
    provider = Web3.to_checksum_address(job.provider)
    if job.verify:
        assert job.profile_hash is not None
        data = contract.encode_abi(
            "verifyProvider", args=[provider, bytes.fromhex(job.profile_hash[2:])]
        )
    else:
        data = contract.encode_abi("unverifyProvider", args=[provider])
    try:
        tx = sender.send(sender.fresh_key(base), contract.address, data)
        mined = sender.wait(tx)
    except (TxWouldRevertError, TxRevertedError):
        # The provider changed its record meanwhile, or another admin got there first.
        settled = _settled(job, record_on_chain(chain, job.provider))
        if settled is None:
            raise
        _finish(factory, job.id, settled)
        return {"request_id": job.id, "outcome": settled}
    _finish(factory, job.id, VerificationOutcome.SENT, mined.tx_hash)
    log.info(
        "provider %s %s on-chain in %s",
        job.provider,
        "verified" if job.verify else "unverified",
        mined.tx_hash,
    )
    return {"request_id": job.id, "outcome": VerificationOutcome.SENT, "tx_hash": mined.tx_hash}
