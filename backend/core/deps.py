"""FastAPI dependencies: the app's services, one DB transaction per request, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.service import Principal, authenticate
from backend.chain.client import ChainClient
from backend.chain.deployment import Deployment
from backend.core.config import Settings
from backend.core.database import Database
from backend.core.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from backend.core.ratelimit import RateLimiter
from backend.core.security import SESSION_COOKIE
from backend.users.service import admin_addresses

if TYPE_CHECKING:
    from backend.checkout.gateway import StripeGateway

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Services:
    """Everything a request handler may need, built once per app (tests inject fakes)."""

    settings: Settings
    db: Database
    chain: ChainClient
    stripe: StripeGateway
    rate_limiter: RateLimiter
    deployment: Deployment
    admins: frozenset[str] = field(default_factory=frozenset)


def get_services(request: Request) -> Services:
    """The app's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def _db_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Commit before the response is sent (scope="function"), so a client never sees success
    # for a transaction that then fails to commit.
    services = get_services(request)
    async with services.db.session(write=request.method not in _SAFE_METHODS) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(_db_session, scope="function")]


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


def client_ip(request: Request) -> str:
    """The peer address (behind a proxy, run uvicorn with --proxy-headers to make it real)."""
    return request.client.host if request.client else "unknown"


async def auth_rate_limit(request: Request, services: ServicesDep) -> None:
    """Throttle sign-in endpoints per client IP (429 in the API's error shape)."""
    allowed, wait = await services.rate_limiter.allow(f"auth:{client_ip(request)}")
    if not allowed:
        retry = max(1, int(wait + 0.999))
        raise RateLimitedError(
            f"too many sign-in requests; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )


def make_admins(settings: Settings) -> frozenset[str]:
    """The admin wallets."""
    return admin_addresses(settings)
