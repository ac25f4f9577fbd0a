"""Learning progress: completed lessons per learner."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Address, Base, BigId, UTCDateTime, utcnow


class LessonProgress(Base):
    """`address` completed `lesson_id` (once: completing again is a no-op)."""

    __tablename__ = "lesson_progress"
    __table_args__ = (
        UniqueConstraint("address", "lesson_id"),
        Index("ix_lesson_progress_address_course", "address", "course_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(Address)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
