"""/api/v1/courses/{id}/lessons: reading (entitled learners) and completing lessons."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.deps import DbSession, ServicesDep
from backend.auth.deps import CurrentUser
from backend.catalog.schemas import LessonOut
from backend.core.openapi import errors
from backend.core.schemas import CourseId, LessonNumber
from backend.learning import views
from backend.learning.schemas import ProgressOut

router = APIRouter(prefix="/courses", tags=["learning"])


@router.get("/{course_id}/lessons/{n}", response_model=LessonOut)
async def read_lesson(
    course_id: CourseId, n: LessonNumber, principal: CurrentUser, session: DbSession
) -> LessonOut:
    """Lesson `n` of a course; 403 `not_entitled` without access."""
    return await session.run_sync(views.lesson_out, principal.address, course_id, n)


@router.post("/{course_id}/lessons/{n}/complete", response_model=ProgressOut, responses=errors(409))
async def complete_lesson(
    course_id: CourseId,
    n: LessonNumber,
    principal: CurrentUser,
    session: DbSession,
    services: ServicesDep,
) -> ProgressOut:
    """Mark lesson `n` completed (idempotent); the last lesson requests the certificate."""
    return await session.run_sync(
        views.completion_out,
        principal.address,
        course_id,
        n,
        chain_id=services.settings.chain_id,
    )


@router.get("/{course_id}/progress", response_model=ProgressOut)
async def read_progress(
    course_id: CourseId, principal: CurrentUser, session: DbSession
) -> ProgressOut:
    """The signed-in learner's progress: completed lesson positions, total, certificate.
    (Added for the web app's progress marks.)"""
    return await session.run_sync(views.progress_out, principal.address, course_id)
