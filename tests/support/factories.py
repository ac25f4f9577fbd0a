"""Test data builders on a sync `Session` (async tests call them through `run_sync`)."""

from __future__ import annotations

import itertools
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, Entitlement
from backend.access.service import grant_access
from backend.catalog.models import Course, CourseChain, CourseStatus, Lesson, Token, TokenPrice
from backend.certificates.models import Certificate, CertificateStatus
from backend.core.db import utcnow
from backend.core.security import ZERO_ADDRESS
from backend.payouts.models import PayoutEntry, PayoutKind
from backend.provider.models import ProviderProfile
from backend.provider.profiles import profile_hash

CHAIN_ID = 31337  # the chain of the API under test (support.api.CHAIN_ID)

NATIVE = ZERO_ADDRESS
USDC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
_counter = itertools.count(1)


def account(name: str) -> LocalAccount:
    """A deterministic test account per name."""
    return Account.from_key(keccak(text=f"tuition-test:{name}"))


def tx_hash(n: int | None = None) -> str:
    """A unique-looking 32-byte hash."""
    return "0x" + keccak(text=f"tx:{n if n is not None else next(_counter)}").hex()


def seed_test_tokens(session: Session, chain_id: int = CHAIN_ID) -> None:
    """ETH (native) and a 6-decimals USDC of chain `chain_id`."""
    for address, symbol, decimals, name in (
        (NATIVE, "ETH", 18, "Ether"),
        (USDC, "USDC", 6, "USD Coin"),
    ):
        if session.get(Token, (chain_id, address)) is None:
            session.add(
                Token(
                    chain_id=chain_id, address=address, symbol=symbol, decimals=decimals, name=name
                )
            )
    session.flush()


def make_course(
    session: Session,
    *,
    provider: str,
    title: str | None = None,
    status: str = CourseStatus.PUBLISHED,
    onchain_id: int | None = None,
    chain_id: int = CHAIN_ID,
    fiat_price: int | None = None,
    currency: str | None = "usd",
    lessons: int = 0,
    prices: dict[str, int] | None = None,
    refund_window: int = 14 * 24 * 3600,
) -> Course:
    """A course with optional on-chain id (on `chain_id`), card price, lessons and prices."""
    course = Course(
        provider=provider,
        title=title or f"Course {next(_counter)}",
        description="A test course.",
        status=status,
        chains=(
            [] if onchain_id is None else [CourseChain(chain_id=chain_id, onchain_id=onchain_id)]
        ),
        fiat_price=fiat_price,
        fiat_currency=currency if fiat_price is not None else None,
        refund_window=refund_window,
    )
    session.add(course)
    session.flush()
    for position in range(1, lessons + 1):
        session.add(
            Lesson(
                course_id=course.id,
                position=position,
                title=f"Lesson {position}",
                body=f"Body of lesson {position}",
            )
        )
    for token, price in (prices or {}).items():
        session.add(
            TokenPrice(
                course_id=course.id, chain_id=chain_id, token=token, price=price, accepted=True
            )
        )
    session.flush()
    return course


def make_grant(session: Session, *, address: str, course_id: int, **kwargs: Any) -> Entitlement:
    """An admin-style grant."""
    return grant_access(
        session,
        address=address,
        course_id=course_id,
        source=kwargs.get("source", AccessSource.GRANT),
        order_id=kwargs.get("order_id"),
        actor=kwargs.get("actor", "test"),
        reason=kwargs.get("reason", "test grant"),
        on_chain=kwargs.get("on_chain", False),
        chain_id=kwargs.get("chain_id", CHAIN_ID),
    )


def make_certificate(
    session: Session, *, course_id: int, address: str, status: str = CertificateStatus.MINTED
) -> Certificate:
    """A certificate of (course, address), minted unless `status` says otherwise."""
    course = session.get(Course, course_id)
    assert course is not None
    token_id = None
    if course.chains:
        token_id = (int(course.chains[0].onchain_id) << 160) | int(address, 16)
    certificate = Certificate(
        chain_id=course.chains[0].chain_id if course.chains else CHAIN_ID,
        course_id=course_id,
        address=address,
        token_id=token_id if status == CertificateStatus.MINTED else None,
        record_hash="0x" + keccak(text=f"record:{course_id}:{address}")[:28].hex(),
        record={"course": course_id, "learner": address},
        status=status,
    )
    session.add(certificate)
    session.flush()
    return certificate


def make_provider_profile(
    session: Session,
    address: str,
    name: str,
    domain: str,
    *,
    verified_by: str | None = None,
    chain_id: int = CHAIN_ID,
) -> ProviderProfile:
    """A provider's public record on `chain_id` as the indexer mirrors it; verified when
    `verified_by`."""
    profile = ProviderProfile(
        chain_id=chain_id,
        address=address,
        name=name,
        domain=domain,
        profile_hash=profile_hash(name, domain),
        verified=verified_by is not None,
        verified_at=utcnow() if verified_by else None,
        verified_by=verified_by,
        block_number=next(_counter),
        tx_hash=tx_hash(),
    )
    session.add(profile)
    session.flush()
    return profile


def make_payout(
    session: Session,
    *,
    account: str,
    kind: str = PayoutKind.WITHDRAWN,
    token: str = NATIVE,
    amount: int = 1,
    fee: int = 0,
    block_number: int = 1,
) -> PayoutEntry:
    """A payout ledger entry as the indexer records it."""
    entry = PayoutEntry(
        kind=kind,
        account=account,
        token=token,
        amount=amount,
        fee=fee,
        chain_id=31337,
        tx_hash=tx_hash(),
        log_index=0,
        block_hash=tx_hash(),
        block_number=block_number,
    )
    session.add(entry)
    session.flush()
    return entry
