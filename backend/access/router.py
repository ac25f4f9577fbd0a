"""/api/v1/courses/{id}/access (the hot path) and free claims."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from backend.access import service
from backend.access.repository import check_access
from backend.access.schemas import AccessOut
from backend.api.deps import DbSession, Services
from backend.auth.deps import CurrentUser
from backend.core.errors import InvalidInputError, NotFoundError
from backend.core.openapi import errors
from backend.core.schemas import CourseId
from backend.core.security import InvalidAddressError, checksum_address

router = APIRouter(prefix="/courses", tags=["access"])

_JSON = "application/json"


_ACCESS_PARAMETERS = [
    {
        "name": "course_id",
        "in": "path",
        "required": True,
        "description": "The course's id",
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    },
    {
        "name": "address",
        "in": "query",
        "required": True,
        "description": "0x address, any case (mixed case must be a valid EIP-55 checksum)",
        "schema": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
    },
]


@router.get(
    "/{course_id}/access",
    response_model=AccessOut,
    responses={404: {"description": "Unknown course"}, 422: {"description": "Invalid input"}},
    openapi_extra={"parameters": _ACCESS_PARAMETERS},
)
async def access_check(request: Request) -> Response:
    """Does `address` have access to this course? The hot path: one indexed lookup.

    Parameters are parsed here rather than by FastAPI's dependency machinery (which costs more
    than the database lookup); they are documented above all the same. No session, no ORM: a
    precompiled statement, and a response serialized directly.
    """
    raw_id = request.path_params["course_id"]
    if not (raw_id.isascii() and raw_id.isdigit()) or not 1 <= int(raw_id) <= 2**31 - 1:
        raise InvalidInputError("course_id must be a positive integer", code="validation_error")
    course_id = int(raw_id)
    address = request.query_params.get("address")
    if address is None:
        raise InvalidInputError("the address query parameter is required", code="validation_error")
    try:
        checksummed = checksum_address(address)
    except InvalidAddressError as exc:
        raise InvalidInputError(str(exc), code="invalid_address") from exc
    services: Services = request.app.state.services
    found = await check_access(services.db, course_id, checksummed)
    if found is None:
        raise NotFoundError(f"course {course_id} does not exist", code="course_not_found")
    has_access, source, since = found
    body = {
        "hasAccess": has_access,
        "source": source,
        "since": since.isoformat() if since else None,
    }
    return Response(orjson.dumps(body), media_type=_JSON)


@router.post("/{course_id}/claim", response_model=AccessOut, responses=errors(409))
async def claim_free_course(
    course_id: CourseId, principal: CurrentUser, session: DbSession
) -> AccessOut:
    """Get access to a course whose card price is 0 (idempotent)."""
    entitlement = await session.run_sync(
        service.claim_free_course, address=principal.address, course_id=course_id
    )
    return AccessOut(has_access=True, source=entitlement.source, since=entitlement.granted_at)
