"""Revoking a certificate on-chain: `revoke(tokenId, reasonCode)` with the operator key (ISSUER).

The backend stores the reason (code and text) and queues `certificate.revoke`; this sends the
transaction. Idempotent: the chain is asked first (already revoked: nothing to send), the send
goes through the sender under a per-certificate key (a re-run waits for the same transaction),
and a refused estimate is re-judged against the chain. The row's status is not touched here:
the indexer sets it from `CertificateRevoked`, so the chain stays the one authority.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from backend.certificates.models import Certificate, CertificateStatus
from backend.core.db import session_scope, utcnow
from backend.core.errors import (
    OtherChainError,
    PermanentError,
    TxRevertedError,
    TxWouldRevertError,
)
from backend.worker.chain import Chain, certificate_on_chain
from backend.worker.sender import TxSender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RevokeJob:
    """What the worker needs of a certificate to revoke."""

    id: int
    token_id: int
    reason_code: int


def _load(factory: sessionmaker[Session], certificate_id: int, chain_id: int) -> RevokeJob | None:
    with session_scope(factory) as s:
        cert = s.get(Certificate, certificate_id)
        if cert is None:
            raise PermanentError(f"certificate {certificate_id} does not exist")
        if cert.chain_id != chain_id:
            # Another chain's token: that network's worker revokes it.
            raise OtherChainError(
                cert.chain_id,
                f"certificate {certificate_id} is on chain {cert.chain_id}, not {chain_id}",
            )
        if cert.status == CertificateStatus.REVOKED or cert.revoke_requested_at is None:
            return None  # done, or never asked for
        if cert.token_id is None or cert.revoke_reason_code is None:
            raise PermanentError(f"certificate {certificate_id} has no token id or reason code")
        return RevokeJob(cert.id, int(cert.token_id), int(cert.revoke_reason_code))


def revoke_key(chain: Chain, token_id: int) -> str:
    """The sender's operation key of revoking `token_id`."""
    return f"revoke:{chain.certificate.address}:{token_id}"


def _revoked_on_chain(chain: Chain, token_id: int) -> bool:
    facts = certificate_on_chain(chain, token_id)
    if facts is None:
        raise PermanentError(f"certificate {token_id} is not on-chain")
    return bool(facts["revoked"])


def revoke_certificate(
    certificate_id: int, *, factory: sessionmaker[Session], chain: Chain, sender: TxSender
) -> dict[str, Any]:
    """Send the revocation of one certificate; returns what happened (the job's result).

    Raises:
        RetryableError: try again later (includes `TxNotMinedError`).
        PermanentError: the certificate cannot be revoked (not on-chain).
    """
    job = _load(factory, certificate_id, chain.chain_id)
    if job is None:
        return {"certificate_id": certificate_id, "outcome": "nothing_to_do"}
    base = revoke_key(chain, job.token_id)
    if _revoked_on_chain(chain, job.token_id):
        sender.settle_operation(base)
        return {"certificate_id": job.id, "outcome": "already_revoked"}
    contract = chain.certificate
    data = contract.encode_abi("revoke", args=[job.token_id, job.reason_code])
    try:
        tx = sender.send(sender.fresh_key(base), contract.address, data)
    except TxWouldRevertError:
        if _revoked_on_chain(chain, job.token_id):  # revoked meanwhile by someone else
            return {"certificate_id": job.id, "outcome": "already_revoked"}
        raise
    with session_scope(factory) as s:
        s.execute(
            update(Certificate)
            .where(Certificate.id == job.id)
            .values(revoke_tx_hash=tx.tx_hash, updated_at=utcnow())
        )
    try:
        mined = sender.wait(tx)
    except TxRevertedError:
        if _revoked_on_chain(chain, job.token_id):
            return {"certificate_id": job.id, "outcome": "already_revoked"}
        raise
    log.info("certificate %d revoked on-chain in %s", job.id, mined.tx_hash)
    return {"certificate_id": job.id, "outcome": "revoked", "tx_hash": mined.tx_hash}
