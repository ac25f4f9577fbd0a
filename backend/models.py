"""Every model of the API, imported in one place so Alembic's metadata sees all tables."""

from __future__ import annotations

from backend.access.models import AccessSource, Entitlement
from backend.audit.models import AuditEntry
from backend.auth.models import AuthNonce, AuthSession
from backend.catalog.models import (
    CertificateMode,
    Course,
    CourseChain,
    CourseStatus,
    Lesson,
    Token,
    TokenPrice,
)
from backend.certificates.models import Certificate, CertificateStatus
from backend.core.db import Base
from backend.learning.models import LessonProgress
from backend.orders.models import Order, OrderStatus, Rail
from backend.outbox.models import OutboxMessage
from backend.payouts.models import PayoutEntry, PayoutKind
from backend.provider.models import ProviderProfile, ProviderVerificationRequest
from backend.users.models import User
from backend.webhooks.models import StripeEvent

__all__ = [
    "AccessSource",
    "AuditEntry",
    "AuthNonce",
    "AuthSession",
    "Base",
    "Certificate",
    "CertificateMode",
    "CertificateStatus",
    "Course",
    "CourseChain",
    "CourseStatus",
    "Entitlement",
    "Lesson",
    "LessonProgress",
    "Order",
    "OrderStatus",
    "OutboxMessage",
    "PayoutEntry",
    "PayoutKind",
    "ProviderProfile",
    "ProviderVerificationRequest",
    "Rail",
    "StripeEvent",
    "Token",
    "TokenPrice",
    "User",
]
