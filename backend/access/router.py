"""/api/v1/courses/{id}/access (the hot path) and free claims."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from backend.access import service
from backend.access.cache import AccessCache
from backend.access.repository import access_answer
from backend.access.schemas import AccessOut
from backend.api.deps import DbSession, Services
from backend.auth.deps import CurrentUser
from backend.core.errors import InvalidInputError, NotFoundError
from backend.core.openapi import errors
from backend.core.schemas import CourseId
from backend.core.security import InvalidAddressError, checksum_address

router = APIRouter(prefix="/courses", tags=["access"])

ACCESS_PATH = "/courses/{course_id}/access"
_MAX_ID = 2**31 - 1
_JSON_HEADERS = (b"content-type", b"application/json")

# The operation as the OpenAPI document shows it (the endpoint is a bare ASGI app, which FastAPI
# does not describe by itself).
ACCESS_OPERATION: dict[str, Any] = {
    "tags": ["access"],
    "summary": "Access Check",
    "description": (
        "Does `address` have access to this course? The hot path: answered from this "
        "replica's cache, kept true by the database's change notifications, or by one indexed "
        "lookup."
    ),
    "operationId": "access_check_api_v1_courses__course_id__access_get",
    "parameters": [
        {
            "name": "course_id",
            "in": "path",
            "required": True,
            "description": "The course's id",
            "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_ID},
        },
        {
            "name": "address",
            "in": "query",
            "required": True,
            "description": "0x address, any case (mixed case must be a valid EIP-55 checksum)",
            "schema": {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"},
        },
    ],
    "responses": {
        "200": {
            "description": "Successful Response",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AccessOut"}}},
        },
        "404": {"description": "Unknown course"},
        "422": {"description": "Invalid input"},
    },
}


class AccessCheckEndpoint:
    """`GET /api/v1/courses/{course_id}/access` as a bare ASGI app (the hot path).

    Served by a plain Starlette route: FastAPI's request handling (dependency solving, an exit
    stack, response validation) costs more CPU than the whole answer, so parameters are parsed
    here and the body is written directly. The app's middleware (request id, metrics, access
    log) and its error handlers still apply: errors are raised as domain errors.

    Args:
        cache: This process's access cache (PostgreSQL), or None.
    """

    def __init__(self, cache: AccessCache | None) -> None:
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_id = scope["path_params"]["course_id"]
        if not (raw_id.isascii() and raw_id.isdigit()) or not 1 <= int(raw_id) <= _MAX_ID:
            raise InvalidInputError("course_id must be a positive integer", code="validation_error")
        course_id = int(raw_id)
        address = _query_param(scope["query_string"], "address")
        if address is None:
            raise InvalidInputError(
                "the address query parameter is required", code="validation_error"
            )
        try:
            checksummed = checksum_address(address)
        except InvalidAddressError as exc:
            raise InvalidInputError(str(exc), code="invalid_address") from exc
        services: Services = scope["app"].state.services
        body = await access_answer(services.db, self.cache, course_id, checksummed)
        if body is None:
            raise NotFoundError(f"course {course_id} does not exist", code="course_not_found")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _HotRoute(Route):
    """A plain route that names itself in the scope, as Starlette's router does (FastAPI's does
    it for its own routes only): the request metrics label requests by its path template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def access_route(prefix: str, cache: AccessCache | None) -> Route:
    """The access check's route under `prefix` (not in FastAPI's schema: `ACCESS_OPERATION`)."""
    return _HotRoute(
        prefix + ACCESS_PATH,
        AccessCheckEndpoint(cache),
        methods=["GET"],
        include_in_schema=False,
    )


def _query_param(query_string: bytes, name: str) -> str | None:
    """The last value of `name` in a query string (as Starlette's `query_params` reads it)."""
    value = None
    for key, item in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key == name:
            value = item
    return value


@router.post("/{course_id}/claim", response_model=AccessOut, responses=errors(409))
async def claim_free_course(
    course_id: CourseId, principal: CurrentUser, session: DbSession
) -> AccessOut:
    """Get access to a course whose card price is 0 (idempotent)."""
    entitlement = await session.run_sync(
        service.claim_free_course, address=principal.address, course_id=course_id
    )
    return AccessOut(has_access=True, source=entitlement.source, since=entitlement.granted_at)
