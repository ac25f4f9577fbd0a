"""/api/v1/auth: nonce, verify (sign in), logout (`/auth/me` is `backend.account`'s)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from backend.api.deps import DbSession, ServicesDep, client_ip
from backend.auth import service
from backend.auth.deps import auth_rate_limit, bearer_or_cookie_token
from backend.auth.schemas import LogoutOut, NonceOut, SessionOut, VerifyIn
from backend.auth.service import NONCE_TTL
from backend.core.openapi import errors
from backend.core.security import NONCE_COOKIE, SESSION_COOKIE

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get(
    "/nonce",
    response_model=NonceOut,
    dependencies=[Depends(auth_rate_limit)],
    responses=errors(429),
)
async def get_nonce(response: Response, session: DbSession, services: ServicesDep) -> NonceOut:
    """A fresh single-use nonce (10 minutes), bound to this client by an HttpOnly cookie."""
    issued = await service.issue_nonce(session, services.settings)
    response.set_cookie(
        NONCE_COOKIE,
        issued.binder,
        max_age=int(NONCE_TTL.total_seconds()),
        httponly=True,
        secure=services.settings.secure_cookies,
        samesite="lax",
        path="/api/v1/auth",
    )
    response.headers["Cache-Control"] = "no-store"
    return NonceOut(
        nonce=issued.nonce,
        domain=issued.domain,
        uri=issued.uri,
        chain_id=issued.chain_id,
        issued_at=issued.issued_at,
        expires_at=issued.expires_at,
    )


@router.post(
    "/verify",
    response_model=SessionOut,
    dependencies=[Depends(auth_rate_limit)],
    responses=errors(401, 429),
)
async def verify(
    body: VerifyIn,
    request: Request,
    response: Response,
    session: DbSession,
    services: ServicesDep,
) -> SessionOut:
    """Check the signed SIWE message and open a session (cookie + bearer token)."""
    auth_session, token = await service.verify_sign_in(
        session,
        services.chain_for,
        services.settings,
        message=body.message,
        signature=body.signature,
        binder=request.cookies.get(NONCE_COOKIE),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    # Rotate: the session this client had before (if any) ends with the new login.
    if old := request.cookies.get(SESSION_COOKIE):
        await service.revoke_session(session, old)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=services.settings.session_ttl,
        httponly=True,
        secure=services.settings.secure_cookies,
        samesite="lax",
        path="/",
    )
    response.delete_cookie(NONCE_COOKIE, path="/api/v1/auth")
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(token=token, address=auth_session.address, expires_at=auth_session.expires_at)


@router.post("/logout", response_model=LogoutOut)
async def logout(request: Request, response: Response, session: DbSession) -> LogoutOut:
    """End the current session (server-side: the token stops working everywhere)."""
    token = bearer_or_cookie_token(request)
    revoked = await service.revoke_session(session, token) if token else False
    response.delete_cookie(SESSION_COOKIE, path="/")
    return LogoutOut(revoked=revoked)
