"""/api/v1/courses/{id}/lessons: reading (entitled learners) and completing lessons."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from backend.api.deps import DbSession
from backend.auth.deps import CurrentUser
from backend.catalog.schemas import LessonOut
from backend.certificates.schemas import CertificateOut
from backend.core.openapi import errors
from backend.core.schemas import CourseId, LessonNumber
from backend.learning import service
from backend.learning.schemas import ProgressOut

router = APIRouter(prefix="/courses", tags=["learning"])


@router.get("/{course_id}/lessons/{n}", response_model=LessonOut)
async def read_lesson(
    course_id: CourseId, n: LessonNumber, principal: CurrentUser, session: DbSession
) -> LessonOut:
    """Lesson `n` of a course; 403 `not_entitled` without access."""

    def read(s: Session) -> LessonOut:
        lesson = service.open_lesson(s, address=principal.address, course_id=course_id, position=n)
        return LessonOut(
            course_id=course_id, position=lesson.position, title=lesson.title, body=lesson.body
        )

    result: LessonOut = await session.run_sync(read)
    return result


@router.post("/{course_id}/lessons/{n}/complete", response_model=ProgressOut, responses=errors(409))
async def complete_lesson(
    course_id: CourseId, n: LessonNumber, principal: CurrentUser, session: DbSession
) -> ProgressOut:
    """Mark lesson `n` completed (idempotent); the last lesson requests the certificate."""

    def complete(s: Session) -> ProgressOut:
        progress = service.complete_lesson(
            s, address=principal.address, course_id=course_id, position=n
        )
        return ProgressOut(
            course_id=course_id,
            completed=progress.completed,
            total=progress.total,
            certificate=(
                CertificateOut.model_validate(progress.certificate)
                if progress.certificate
                else None
            ),
        )

    result: ProgressOut = await session.run_sync(complete)
    return result


@router.get("/{course_id}/progress", response_model=ProgressOut)
async def read_progress(
    course_id: CourseId, principal: CurrentUser, session: DbSession
) -> ProgressOut:
    """The signed-in learner's progress: completed lesson positions, total, certificate.
    (Added for the web app's progress marks.)"""
    from sqlalchemy import select

    from backend.catalog.models import Lesson
    from backend.catalog.service import lesson_count
    from backend.certificates.models import Certificate
    from backend.learning.models import LessonProgress

    def read(s: Session) -> ProgressOut:
        service.require_readable(s, principal.address, course_id)
        positions = list(
            s.scalars(
                select(Lesson.position)
                .join(LessonProgress, LessonProgress.lesson_id == Lesson.id)
                .where(
                    LessonProgress.address == principal.address,
                    LessonProgress.course_id == course_id,
                )
                .order_by(Lesson.position)
            )
        )
        cert = s.scalar(
            select(Certificate).where(
                Certificate.course_id == course_id, Certificate.address == principal.address
            )
        )
        return ProgressOut(
            course_id=course_id,
            completed=len(positions),
            total=lesson_count(s, course_id),
            certificate=CertificateOut.model_validate(cert) if cert else None,
            completed_lessons=positions,
        )

    result: ProgressOut = await session.run_sync(read)
    return result
