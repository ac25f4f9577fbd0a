"""Pure-ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path): request ids, latency
metrics, access logs, and the Origin check that protects cookie-authenticated writes (CSRF)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from http.cookies import SimpleCookie

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import error_body
from backend.core.logging import request_id_var
from backend.core.metrics import REQUEST_LATENCY
from backend.core.security import NONCE_COOKIE, SESSION_COOKIE, origin_of

access_logger = logging.getLogger("tuition.access")
logger = logging.getLogger("tuition.api")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def route_template(scope: Scope, prefixes: tuple[str, ...] = ()) -> str:
    """The matched route's path template (bounded cardinality for metric labels).

    FastAPI puts the route as declared in its router into the scope, without the prefixes of
    the routers it was included into: those known prefixes are put back.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return "unmatched"
    path = scope.get("path", "")
    for prefix in prefixes:
        if path.startswith(prefix + "/") and not template.startswith(prefix + "/"):
            return prefix + template
    return str(template)


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """Answer with the API's error body from an ASGI middleware."""
    body = orjson.dumps(error_body(code, message))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Assign a request id (X-Request-ID in and out), time the request, log one line."""

    def __init__(self, app: ASGIApp, *, route_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.route_prefixes = route_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        # Only accept ids that are safe to log and echo; otherwise mint one.
        request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        raw_id = request_id.encode()
        start = time.perf_counter()

        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if started:
                raise  # half a response is out: only the server can end it
            # Answered here rather than re-raised to the server (as Starlette's outermost
            # handler does), which would also drop the client's keep-alive connection.
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send_error(
                send_wrapper, 500, "internal_error", "Something went wrong on our side."
            )
        finally:
            elapsed = time.perf_counter() - start
            template = route_template(scope, self.route_prefixes)
            REQUEST_LATENCY.labels(template, scope["method"], str(status)).observe(elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                    },
                )
            request_id_var.reset(token)


class OriginCheckMiddleware:
    """Refuse cookie-authenticated state-changing requests from other origins (CSRF).

    Requests that carry a bearer token are exempt (a cross-site page cannot set that header
    without a CORS preflight), as are webhooks (they authenticate by signature) and requests
    without our cookies (nothing ambient to abuse).
    """

    def __init__(
        self, app: ASGIApp, *, allowed_origins: Iterable[str], exempt_prefixes: Iterable[str]
    ) -> None:
        self.app = app
        self.allowed = frozenset(origin_of(origin) for origin in allowed_origins)
        self.exempt = tuple(exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _UNSAFE_METHODS
            or scope["path"].startswith(self.exempt)
        ):
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization") or ""
        cookie_header = _header(scope, b"cookie")
        if authorization.lower().startswith("bearer ") or not cookie_header:
            await self.app(scope, receive, send)
            return
        cookies = SimpleCookie()
        try:
            cookies.load(cookie_header)
        except Exception:  # a garbled cookie header carries no session either
            cookies = SimpleCookie()
        if SESSION_COOKIE not in cookies and NONCE_COOKIE not in cookies:
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None or origin == "null":
            referer = _header(scope, b"referer")
            origin = origin_of(referer) if referer else None
        if origin is not None and origin_of(origin) in self.allowed:
            await self.app(scope, receive, send)
            return
        await send_error(
            send,
            403,
            "origin_mismatch",
            "Cross-origin request refused: the Origin header must be the site's own.",
        )
