"""Users and their roles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.core.security import InvalidAddressError, checksum_address
from backend.users.models import User


def get_or_create_user(session: Session, address: str) -> User:
    """The user of a wallet, created at first sign-in."""
    user = session.scalar(select(User).where(User.address == address))
    if user is not None:
        return user
    user = User(address=address)
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        existing = session.scalar(select(User).where(User.address == address))
        assert existing is not None
        return existing
    return user


def admin_addresses(settings: Settings) -> frozenset[str]:
    """Checksummed admin wallets from settings (malformed entries are ignored)."""
    result = set()
    for raw in settings.admin_addresses:
        try:
            result.add(checksum_address(raw))
        except InvalidAddressError:
            continue
    return frozenset(result)


def update_profile(
    session: Session, user: User, *, email: str | None, display_name: str | None
) -> User:
    """Set the optional profile fields."""
    if email is not None:
        user.email = email or None
    if display_name is not None:
        user.display_name = display_name or None
    session.flush()
    return user
