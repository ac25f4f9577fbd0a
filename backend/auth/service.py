"""Sign-In with Ethereum (EIP-4361) and server-side sessions.

siwe 4.4's `SiweMessage.verify()` is not enough on its own: it checks domain and nonce only when
passed, never the chain id, the URI or issued-at; a corrupted signature raises eth_keys'
BadSignature and a naive datetime TypeError instead of a verification error. So the message is
parsed with siwe (the EIP-4361 grammar) and every check is done here, each failure mapped to a
401 with its own code. The nonce is consumed only after the signature verified, by one
conditional UPDATE whose row count says whether this request won (safe under concurrency).
"""

from __future__ import annotations

import logging
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.models import AuthNonce, AuthSession
from backend.chain.client import ChainClient, is_valid_eip1271_signature
from backend.core.config import Settings
from backend.core.db import utcnow
from backend.core.errors import UnauthorizedError
from backend.core.metrics import SIGN_INS
from backend.core.security import hash_token, host_of, new_token, origin_of
from backend.users.models import User

with warnings.catch_warnings():
    # abnf < 2.9 (pinned for siwe 4.4) warns that siwe's grammar redefines core rules.
    warnings.simplefilter("ignore")
    from siwe import SiweMessage
    from siwe.siwe import datetime_from_iso8601_string

logger = logging.getLogger(__name__)

NONCE_TTL = timedelta(minutes=10)
CLOCK_SKEW = timedelta(seconds=60)
MAX_SIGNATURE_BYTES = 4096  # EOA signatures are 65 bytes; contract wallets may send more


class SignInError(UnauthorizedError):
    """A failed sign-in: 401 with a code saying what was wrong."""

    code = "sign_in_failed"


def _fail(code: str, message: str) -> SignInError:
    SIGN_INS.labels(code).inc()
    return SignInError(message, code=code)


@dataclass(frozen=True)
class IssuedNonce:
    """A fresh nonce and the binder to store in the client's cookie."""

    nonce: str
    binder: str
    domain: str
    uri: str
    chain_id: int
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """Who is calling: the wallet of a valid session."""

    address: str
    user_id: int
    session_id: int


async def issue_nonce(session: AsyncSession, settings: Settings) -> IssuedNonce:
    """Store a single-use nonce valid for 10 minutes, bound to a fresh client binder."""
    now = utcnow()
    binder = new_token()
    # 32 hex chars: alphanumeric as EIP-4361 requires, 128 bits of entropy.
    nonce = secrets.token_hex(16)
    row = AuthNonce(
        nonce=nonce,
        binder_hash=hash_token(binder),
        issued_at=now,
        expires_at=now + NONCE_TTL,
    )
    session.add(row)
    await session.flush()
    return IssuedNonce(
        nonce=nonce,
        binder=binder,
        domain=host_of(settings.public_url),
        uri=origin_of(settings.public_url),
        chain_id=settings.chain_id,
        issued_at=now,
        expires_at=row.expires_at,
    )


def _parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime_from_iso8601_string(str(value))
    except (TypeError, ValueError) as exc:
        raise _fail("malformed_message", f"{field} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        # A naive time would make siwe raise TypeError; an unzoned time is ambiguous anyway.
        raise _fail("malformed_message", f"{field} must carry a time zone (e.g. Z)")
    return parsed


def _signature_bytes(signature: str) -> bytes:
    text = signature[2:] if signature[:2] in ("0x", "0X") else signature
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise _fail("invalid_signature", "the signature is not hex") from exc
    if not raw or len(raw) > MAX_SIGNATURE_BYTES:
        raise _fail("invalid_signature", "the signature has an impossible length")
    return raw


def _recover(message: str, signature: bytes) -> str | None:
    # personal_sign signatures carry v in {27, 28} (some wallets send {0, 1}); eth-account would
    # also read larger v as EIP-155 transaction encodings, which a message signature never is.
    if len(signature) != 65 or signature[64] not in (0, 1, 27, 28):
        return None
    try:
        return str(Account.recover_message(encode_defunct(text=message), signature=signature))
    # eth_keys' BadSignature, ValueError, IndexError...: any failure means "not this key".
    except Exception:
        return None


def _check_message_fields(msg: SiweMessage, settings: Settings) -> None:
    expected_domain = host_of(settings.public_url)
    expected_origin = origin_of(settings.public_url)
    if msg.domain != expected_domain:
        raise _fail(
            "domain_mismatch", f"the message is for {msg.domain!r}, not {expected_domain!r}"
        )
    if msg.scheme is not None and msg.scheme != expected_origin.split("://", 1)[0]:
        raise _fail("scheme_mismatch", "the message's scheme is not this site's")
    try:
        uri_origin = origin_of(str(msg.uri))
    except ValueError as exc:
        raise _fail("uri_mismatch", "the message's URI is invalid") from exc
    if uri_origin != expected_origin:
        raise _fail("uri_mismatch", f"the message's URI must be on {expected_origin}")
    # Any chain Tuition serves: a session belongs to the address, whichever chain its wallet is on.
    if msg.chain_id not in settings.chain_ids:
        served = ", ".join(str(c) for c in sorted(settings.chain_ids))
        raise _fail("chain_mismatch", f"sign in on chain {served}, not {msg.chain_id}")


def _check_times(msg: SiweMessage, now: datetime) -> datetime:
    issued_at = _parse_time(msg.issued_at, "Issued At")
    assert issued_at is not None
    if issued_at > now + CLOCK_SKEW:
        raise _fail("issued_in_future", "the message's Issued At is in the future")
    expiration = _parse_time(msg.expiration_time, "Expiration Time")
    if expiration is not None and expiration <= now:
        raise _fail("message_expired", "the message has expired")
    not_before = _parse_time(msg.not_before, "Not Before")
    if not_before is not None and not_before > now + CLOCK_SKEW:
        raise _fail("message_not_yet_valid", "the message is not valid yet (Not Before)")
    return issued_at


async def verify_sign_in(
    session: AsyncSession,
    chain_for: Callable[[int], ChainClient],
    settings: Settings,
    *,
    message: str,
    signature: str,
    binder: str | None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> tuple[AuthSession, str]:
    """Check a signed SIWE message and open a session; returns (session row, bearer token).

    Raises:
        SignInError: any check failed (nothing is created, the nonce stays unused).
    """
    try:
        msg = SiweMessage.from_message(message=message)
    except Exception as exc:  # the grammar, pydantic and checksum errors all mean "malformed"
        raise _fail("malformed_message", "not a valid EIP-4361 sign-in message") from exc
    _check_message_fields(msg, settings)
    now = utcnow()
    issued_at = _check_times(msg, now)

    row = await session.scalar(select(AuthNonce).where(AuthNonce.nonce == msg.nonce))
    if row is None:
        raise _fail("invalid_nonce", "unknown nonce: get one from /api/v1/auth/nonce")
    if row.used_at is not None:
        raise _fail("nonce_used", "this nonce was already used")
    if row.expires_at <= now:
        raise _fail("nonce_expired", "this nonce has expired; get a new one")
    if binder is None or hash_token(binder) != row.binder_hash:
        raise _fail("nonce_mismatch", "this nonce was issued to another client")
    if issued_at < row.issued_at - CLOCK_SKEW:
        raise _fail("issued_before_nonce", "the message claims to predate its nonce")

    sig = _signature_bytes(signature)
    address = str(msg.address)
    if _recover(message, sig) != address:
        message_hash = _hash_eip191_message(encode_defunct(text=message))
        # A contract wallet is asked on the chain the message names (it may exist only there).
        wallet_chain = chain_for(msg.chain_id)
        if not await is_valid_eip1271_signature(wallet_chain, address, message_hash, sig):
            raise _fail("invalid_signature", "the signature does not match the message's address")

    consumed = await session.execute(
        update(AuthNonce)
        .where(
            AuthNonce.nonce == msg.nonce,
            AuthNonce.used_at.is_(None),
            AuthNonce.expires_at > now,
            AuthNonce.binder_hash == row.binder_hash,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise _fail("nonce_used", "this nonce was already used")

    user = await session.scalar(select(User).where(User.address == address))
    if user is None:
        user = User(address=address)
        session.add(user)
        await session.flush()
    token = new_token()
    expires = now + timedelta(seconds=settings.session_ttl)
    if expiration := _parse_time(msg.expiration_time, "Expiration Time"):
        expires = min(expires, expiration)
    auth_session = AuthSession(
        token_hash=hash_token(token),
        user_id=user.id,
        address=address,
        chain_id=msg.chain_id,
        created_at=now,
        expires_at=expires,
        ip=(ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(auth_session)
    await session.flush()
    SIGN_INS.labels("ok").inc()
    return auth_session, token


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    """The principal of a bearer token, if it names a live session."""
    row = (
        await session.execute(
            select(AuthSession.address, AuthSession.user_id, AuthSession.id).where(
                AuthSession.token_hash == hash_token(token),
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > utcnow(),
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(address=row[0], user_id=row[1], session_id=row[2])


async def revoke_session(session: AsyncSession, token: str) -> bool:
    """Revoke the session of `token`; True if one was live."""
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
