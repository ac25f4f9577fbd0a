"""Per-process singletons of the task bodies: chain, sender, email backend."""

from __future__ import annotations

import threading

from backend.core.config import get_settings
from backend.core.db import process_session_factory
from backend.integrations.stripe_gateway import StripeGateway
from backend.worker.chain import Chain, get_chain
from backend.worker.email import EmailBackend, get_backend
from backend.worker.sender import TxSender

_lock = threading.Lock()
_senders: dict[int, TxSender] = {}
_email: EmailBackend | None = None
_stripe: StripeGateway | None = None


def get_sender(chain: Chain | None = None) -> TxSender:
    """The operator key's sender on `chain` (default: TUITION_NETWORK's): one per chain, each
    with that chain's own nonce stream."""
    chain = chain or get_chain()
    with _lock:
        if chain.chain_id not in _senders:
            _senders[chain.chain_id] = TxSender(
                chain.w3, chain.operator, process_session_factory(), chain_id=chain.chain_id
            )
        return _senders[chain.chain_id]


def get_email_backend() -> EmailBackend:
    """The configured receipt email backend."""
    global _email
    with _lock:
        if _email is None:
            _email = get_backend()
        return _email


def get_stripe_gateway() -> StripeGateway:
    """The Stripe SDK gateway (its HTTP client is reused between tasks)."""
    global _stripe
    with _lock:
        if _stripe is None:
            _stripe = StripeGateway(get_settings())
        return _stripe


def reset_runtime() -> None:
    """Forget the singletons (after a fork, or when tests change settings)."""
    global _email, _stripe
    with _lock:
        _senders.clear()
        _email = None
        _stripe = None
