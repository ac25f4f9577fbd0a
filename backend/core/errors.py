"""The one error tree, and the one JSON error shape of the API.

`TuitionError` is the root. Services raise a `DomainError` subclass (a code, an HTTP status and
a message); one exception handler renders all of them, and the handlers below make FastAPI's and
Starlette's own errors (404, 405, 422...) use the same shape:
``{"error": {"code": "...", "message": "..."}}``. Background tasks raise a `TaskError`
subclass, which tells the worker to retry later or to give up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg.exceptions as asyncpg_errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("tuition.errors")


class TuitionError(Exception):
    """The root of every error the project raises on purpose."""


class DomainError(TuitionError):
    """An expected failure with a stable machine-readable code."""

    code: str = "bad_request"
    status_code: int = 400
    message: str = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers
        super().__init__(self.message)


class BadRequestError(DomainError):
    """The request is well-formed JSON but makes no sense."""


class InvalidInputError(DomainError):
    """A field is invalid (beyond what the schema catches)."""

    code = "validation_error"
    status_code = 422
    message = "The request is invalid."


class UnauthorizedError(DomainError):
    """No valid session, or a failed sign-in."""

    code = "unauthorized"
    status_code = 401
    message = "Sign in first."


class ForbiddenError(DomainError):
    """Signed in, but not allowed."""

    code = "forbidden"
    status_code = 403
    message = "You are not allowed to do this."


class NotFoundError(DomainError):
    """The resource does not exist (or is not visible to the caller)."""

    code = "not_found"
    status_code = 404
    message = "Not found."


class ConflictError(DomainError):
    """The request conflicts with the current state."""

    code = "conflict"
    status_code = 409
    message = "The request conflicts with the current state."


class RateLimitedError(DomainError):
    """Too many requests from one client."""

    code = "rate_limited"
    status_code = 429
    message = "Too many requests; slow down."


class UpstreamError(DomainError):
    """A dependency (Stripe, the chain node) failed."""

    code = "upstream_error"
    status_code = 502
    message = "A payment or chain service failed; try again."


class ServiceUnavailableError(DomainError):
    """Not configured or not ready."""

    code = "unavailable"
    status_code = 503
    message = "The service is not available."


# ------------------------------------------------------------------ background tasks


class TaskError(TuitionError):
    """A background task's failure: retry later (`RetryableError`) or give up (`PermanentError`)."""


class RetryableError(TaskError):
    """Try again later: RPC unreachable, node lagging, a lock or a race lost."""


class ChainUnavailableError(RetryableError):
    """The node could not be reached or answered with an unexpected error."""


class TxNotMinedError(RetryableError):
    """The transaction is recorded and broadcast but has no receipt yet."""

    def __init__(self, tx_hash: str, nonce: int) -> None:
        super().__init__(f"transaction {tx_hash} (nonce {nonce}) not mined yet")
        self.tx_hash = tx_hash
        self.nonce = nonce


class PermanentError(TaskError):
    """Retrying cannot help: bad data, missing configuration, a contract that refuses."""


class TxWouldRevertError(PermanentError):
    """Gas estimation reverted: the contract refuses the call in the current state."""


class TxRevertedError(PermanentError):
    """The transaction was mined with status 0."""

    def __init__(self, tx_hash: str) -> None:
        super().__init__(f"transaction {tx_hash} reverted")
        self.tx_hash = tx_hash


class OtherChainError(RetryableError):
    """The row a task writes on-chain lives on another chain than the one it was given: the
    task runs again with that chain's client and sender (`send_on_chain`)."""

    def __init__(self, chain_id: int, message: str) -> None:
        super().__init__(message)
        self.chain_id = chain_id


class NotDeployedError(RetryableError):
    """No deployment file (or contract) for the configured network yet: `tuition deploy` may
    still be running, so this is retried rather than failed."""


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of every error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response in the API's one shape."""
    return JSONResponse(
        error_body(code, message, details),
        status_code=status,
        headers=dict(headers) if headers else None,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed."
    if exc.status_code == 404 and message == "Not Found":
        message = "No such resource."
    if exc.status_code == 405:
        message = "Method not allowed on this resource."
    return error_response(exc.status_code, code, message, headers=exc.headers)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "message": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    first = details[0] if details else None
    where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path")) if first else ""
    message = f"{where}: {first['message']}" if first and where else "The request is invalid."
    return error_response(422, "validation_error", message, _jsonable(details))


# Seconds a client should wait before repeating a request the database could not serve.
DATABASE_RETRY_AFTER = 2


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The database restarting or failing over (connection refused or terminated): nothing was
    # committed, so the request can be repeated; say so instead of a bare 500.
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "database_unavailable",
        "The database is briefly unavailable; try again in a moment.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


# What a driver raises while the database restarts or fails over.
_CONNECTION_ERRORS = (
    asyncpg_errors.PostgresConnectionError,
    asyncpg_errors.OperatorInterventionError,  # shutting down, starting up
    ConnectionError,
)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # SQLAlchemy wraps some drivers' connection failures in a plain DBAPIError (asyncpg's "the
    # database system is shutting down" on a new connection): those are a 503 too; any other
    # database error is a bug.
    assert isinstance(exc, DBAPIError)
    cause = exc.orig.__cause__ if exc.orig is not None else None
    if (
        exc.connection_invalidated
        or isinstance(exc.orig, _CONNECTION_ERRORS)
        or isinstance(cause, _CONNECTION_ERRORS)
    ):
        return await _database_unavailable(request, exc)
    return await _unhandled(request, exc)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "Something went wrong on our side.")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, expected or not, as ``{"error": {"code", "message"}}``."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # A database restarting or failing over, whichever layer notices: SQLAlchemy wraps errors on
    # open connections, but a new connection's failure reaches us as the driver's own error
    # (asyncpg's, or the socket's ConnectionRefusedError).
    for unavailable in (OperationalError, InterfaceError, *_CONNECTION_ERRORS):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unhandled)
