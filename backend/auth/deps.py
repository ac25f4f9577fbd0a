"""FastAPI dependencies for who is calling: the session token, the signed-in principal, admins,
and the sign-in endpoints' rate limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.api.deps import DbSession, ServicesDep, client_ip
from backend.auth.service import Principal, authenticate
from backend.core.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from backend.core.security import SESSION_COOKIE


def bearer_or_cookie_token(request: Request) -> str | None:
    """The session token: `Authorization: Bearer` first (API clients), else the cookie."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedError("use 'Authorization: Bearer <token>'", code="bad_authorization")
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


async def optional_principal(request: Request, session: DbSession) -> Principal | None:
    """The caller if signed in, else None."""
    token = bearer_or_cookie_token(request)
    if not token:
        return None
    return await authenticate(session, token)


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    """The signed-in caller, or 401."""
    if principal is None:
        raise UnauthorizedError("sign in first (session missing, expired or revoked)")
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]
OptionalUser = Annotated[Principal | None, Depends(optional_principal)]


async def admin_principal(principal: CurrentUser, services: ServicesDep) -> Principal:
    """The signed-in caller if an admin, or 403."""
    if principal.address not in services.admins:
        raise ForbiddenError("admins only", code="not_admin")
    return principal


AdminUser = Annotated[Principal, Depends(admin_principal)]


async def auth_rate_limit(request: Request, services: ServicesDep) -> None:
    """Throttle sign-in endpoints per client IP (429 in the API's error shape)."""
    allowed, wait = await services.rate_limiter.allow(f"auth:{client_ip(request)}")
    if not allowed:
        retry = max(1, int(wait + 0.999))
        raise RateLimitedError(
            f"too many sign-in requests; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
