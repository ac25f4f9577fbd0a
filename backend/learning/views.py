"""The learning API's response models, built from the service's results."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.catalog.schemas import LessonOut
from backend.catalog.service import lesson_count
from backend.certificates.schemas import CertificateOut
from backend.learning import service
from backend.learning.schemas import ProgressOut


def lesson_out(session: Session, address: str, course_id: int, position: int) -> LessonOut:
    """Lesson `position` of a course, for a learner allowed to read it."""
    lesson = service.open_lesson(session, address=address, course_id=course_id, position=position)
    return LessonOut(
        course_id=course_id, position=lesson.position, title=lesson.title, body=lesson.body
    )


def completion_out(
    session: Session, address: str, course_id: int, position: int, *, chain_id: int
) -> ProgressOut:
    """Complete lesson `position` (idempotent) and the progress that results; a certificate is
    issued on the course's first chain, else on `chain_id` (the API's network)."""
    progress = service.complete_lesson(
        session, address=address, course_id=course_id, position=position, chain_id=chain_id
    )
    certificate = progress.certificate
    return ProgressOut(
        course_id=course_id,
        completed=progress.completed,
        total=progress.total,
        certificate=CertificateOut.model_validate(certificate) if certificate else None,
    )


def progress_out(session: Session, address: str, course_id: int) -> ProgressOut:
    """The learner's progress: completed lesson positions, total, certificate."""
    positions, certificate = service.progress_of(session, address, course_id)
    return ProgressOut(
        course_id=course_id,
        completed=len(positions),
        total=lesson_count(session, course_id),
        certificate=CertificateOut.model_validate(certificate) if certificate else None,
        completed_lessons=positions,
    )
