"""The signed-in user's own view across domains: roles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.catalog.models import Course


def roles_of(session: Session, address: str, admins: frozenset[str]) -> list[str]:
    """learner (everyone), provider (owns a course), admin (listed in settings)."""
    roles = ["learner"]
    if session.scalar(select(Course.id).where(Course.provider == address).limit(1)) is not None:
        roles.append("provider")
    if address in admins:
        roles.append("admin")
    return roles
