"""/api/v1/courses: the public catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import ChainIdQuery, DbSession, ServicesDep
from backend.auth.deps import OptionalUser
from backend.catalog import views
from backend.catalog.schemas import CourseDetailOut, CoursePageOut
from backend.core.errors import InvalidInputError
from backend.core.schemas import MAX_INT32, CourseId

router = APIRouter(prefix="/courses", tags=["catalog"])


@router.get("", response_model=CoursePageOut)
async def list_courses(
    session: DbSession,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    chain_id: ChainIdQuery = None,
) -> CoursePageOut:
    """Published courses with their token and card prices, `limit` at a time; `onchainId` and
    token prices are `chainId`'s (default: the API's network)."""
    chain = services.chain_id_of(chain_id)
    after_id = None
    if cursor:
        # ASCII digits only ("³" is a digit to str.isdigit) and within the id column.
        if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_INT32:
            raise InvalidInputError(
                "cursor must be a value returned as nextCursor", code="bad_cursor"
            )
        after_id = int(cursor)

    return await session.run_sync(
        lambda s: views.course_page_out(
            s,
            limit=limit,
            after_id=after_id,
            chain_id=chain,
            card_gate=services.card_gate(),
        )
    )


@router.get("/{course_id}", response_model=CourseDetailOut)
async def get_course(
    course_id: CourseId,
    session: DbSession,
    principal: OptionalUser,
    services: ServicesDep,
    chain_id: ChainIdQuery = None,
) -> CourseDetailOut:
    """One course with prices and lesson outline (drafts only for their provider). The card
    price is offered only where the provider can be paid out by card (see
    `TUITION_CARD_REQUIRES_CONNECT`)."""
    viewer = principal.address if principal else None
    chain = services.chain_id_of(chain_id)
    return await session.run_sync(
        lambda s: views.visible_course_out(
            s,
            course_id,
            viewer,
            chain_id=chain,
            card_gate=services.card_gate(),
        )
    )
