"""Learning: reading lessons (entitled learners only) and recording completions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.access.service import active_entitlement
from backend.catalog.models import CourseStatus, Lesson
from backend.catalog.service import get_course, get_lesson, lesson_count
from backend.certificates.models import Certificate
from backend.certificates.service import current_certificate, request_certificate
from backend.core.errors import ConflictError, ForbiddenError
from backend.learning.models import LessonProgress


def require_readable(session: Session, address: str, course_id: int) -> None:
    """403 `not_entitled` unless `address` may read the course: an entitled learner, or its
    provider previewing its own lessons."""
    course = get_course(session, course_id)
    if course.provider == address:
        return
    require_access(session, address, course_id)


def require_access(session: Session, address: str, course_id: int) -> None:
    """403 `not_entitled` unless `address` holds access to the course. Reading is not earning:
    the provider's preview does not count, for progress or for a certificate."""
    if active_entitlement(session, address, course_id) is None:
        raise ForbiddenError(
            "buy this course (or get access) to open its lessons", code="not_entitled"
        )


def open_lesson(session: Session, *, address: str, course_id: int, position: int) -> Lesson:
    """Lesson `position` of a course, for an entitled learner or its provider."""
    require_readable(session, address, course_id)
    return get_lesson(session, course_id, position)


@dataclass(frozen=True)
class Progress:
    """Where a learner stands in a course."""

    completed: int
    total: int
    certificate: Certificate | None


def completed_count(session: Session, address: str, course_id: int) -> int:
    """How many lessons of a course `address` completed."""
    return int(
        session.scalar(
            select(func.count(LessonProgress.id)).where(
                LessonProgress.address == address, LessonProgress.course_id == course_id
            )
        )
        or 0
    )


def complete_lesson(
    session: Session, *, address: str, course_id: int, position: int, chain_id: int
) -> Progress:
    """Record that `address` completed a lesson (idempotent); the last one requests the
    certificate. Needs access (the provider's preview earns nothing), on a course that is not a
    draft (409 `course_not_published`)."""
    course = get_course(session, course_id)
    require_access(session, address, course_id)
    if course.status == CourseStatus.DRAFT:
        raise ConflictError(
            "a draft earns nothing: lessons count once the course is published",
            code="course_not_published",
        )
    lesson = get_lesson(session, course_id, position)
    exists = session.scalar(
        select(LessonProgress.id).where(
            LessonProgress.address == address, LessonProgress.lesson_id == lesson.id
        )
    )
    if exists is None:
        try:
            with session.begin_nested():
                session.add(
                    LessonProgress(address=address, course_id=course_id, lesson_id=lesson.id)
                )
        except IntegrityError:
            pass  # a concurrent request recorded the same completion
    done = completed_count(session, address, course_id)
    total = lesson_count(session, course_id)
    certificate = None
    if total and done >= total:
        certificate = request_certificate(
            session, address=address, course_id=course_id, default_chain_id=chain_id
        )
    return Progress(completed=done, total=total, certificate=certificate)


def progress_of(
    session: Session, address: str, course_id: int
) -> tuple[list[int], Certificate | None]:
    """The positions of the lessons `address` completed, in order, and its certificate (if any)
    of the course; needs the right to read it."""
    require_readable(session, address, course_id)
    positions = list(
        session.scalars(
            select(Lesson.position)
            .join(LessonProgress, LessonProgress.lesson_id == Lesson.id)
            .where(LessonProgress.address == address, LessonProgress.course_id == course_id)
            .order_by(Lesson.position)
        )
    )
    return positions, current_certificate(session, course_id, address)
