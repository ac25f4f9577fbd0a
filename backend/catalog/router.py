"""/api/v1/courses: the public catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from backend.api.deps import DbSession
from backend.auth.deps import OptionalUser
from backend.catalog import service
from backend.catalog.schemas import CourseDetailOut, CoursePageOut
from backend.catalog.views import course_detail_out, courses_out
from backend.core.errors import InvalidInputError
from backend.core.schemas import MAX_INT32, CourseId

router = APIRouter(prefix="/courses", tags=["catalog"])


@router.get("", response_model=CoursePageOut)
async def list_courses(
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> CoursePageOut:
    """Published courses with their token and card prices, `limit` at a time."""
    after_id = None
    if cursor:
        # ASCII digits only ("³" is a digit to str.isdigit) and within the id column.
        if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_INT32:
            raise InvalidInputError(
                "cursor must be a value returned as nextCursor", code="bad_cursor"
            )
        after_id = int(cursor)

    def build(s: Session) -> CoursePageOut:
        courses = service.list_published(s, limit=limit + 1, after_id=after_id)
        page, more = courses[:limit], len(courses) > limit
        return CoursePageOut(
            items=courses_out(s, page), next_cursor=str(page[-1].id) if more and page else None
        )

    page: CoursePageOut = await session.run_sync(build)
    return page


@router.get("/{course_id}", response_model=CourseDetailOut)
async def get_course(
    course_id: CourseId, session: DbSession, principal: OptionalUser
) -> CourseDetailOut:
    """One course with prices and lesson outline (drafts only for their provider)."""
    viewer = principal.address if principal else None

    def build(s: Session) -> CourseDetailOut:
        return course_detail_out(s, service.get_visible_course(s, course_id, viewer))

    detail: CourseDetailOut = await session.run_sync(build)
    return detail
