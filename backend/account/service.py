"""The signed-in user's own view across domains: roles, orders, certificates."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.catalog.models import Course
from backend.certificates.schemas import CertificateOut
from backend.certificates.service import certificates_of
from backend.orders.schemas import OrderOut
from backend.orders.service import orders_of
from backend.orders.views import orders_out


def roles_of(session: Session, address: str, admins: frozenset[str]) -> list[str]:
    """learner (everyone), provider (owns a course), admin (listed in settings)."""
    roles = ["learner"]
    if session.scalar(select(Course.id).where(Course.provider == address).limit(1)) is not None:
        roles.append("provider")
    if address in admins:
        roles.append("admin")
    return roles


def my_orders(session: Session, address: str) -> list[OrderOut]:
    """Orders the address bought or received, card and crypto, newest first."""
    return orders_out(session, orders_of(session, address))


def my_certificates(session: Session, address: str) -> list[CertificateOut]:
    """The address's certificates (requested, minted, claimable, revoked)."""
    return [CertificateOut.model_validate(c) for c in certificates_of(session, address)]
