"""Serve the built web app (backend/web/dist, made by `npm run build:web`) from the API process.

`mount_web(app)` must be called after every API router is included: it adds

- `/assets/*`: the hashed, immutable Vite bundles (StaticFiles, cached for a year);
- the other files at the top of dist (favicon...);
- an SPA fallback that answers `index.html` for client routes (`/courses/3`, `/verify/<id>`,
  `/checkout/return`, `/account`, `/provider`...), with a Content-Security-Policy.

Paths owned by the API and operations (`/api`, `/docs`, `/redoc`, `/openapi.json`, `/metrics`,
`/healthz`, `/readyz`) are never shadowed: unknown paths under them stay JSON 404s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import Scope

from backend.core.config import Settings, get_settings

logger = logging.getLogger("tuition.web")

WEB_DIR = Path(__file__).resolve().parent
DIST_DIR = WEB_DIR / "dist"

# Never answered with the app's index.html.
RESERVED_PREFIXES = ("/api", "/docs", "/redoc", "/openapi.json", "/metrics", "/healthz", "/readyz")

# WalletConnect's relay and RPC, only reachable when a project id is configured.
WALLETCONNECT_ORIGINS = (
    "wss://relay.walletconnect.org",
    "wss://relay.walletconnect.com",
    "https://rpc.walletconnect.org",
    "https://rpc.walletconnect.com",
    "https://pulse.walletconnect.org",
    "https://verify.walletconnect.org",
    "https://verify.walletconnect.com",
    "https://api.web3modal.org",
)

NOT_BUILT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Tuition</title></head>
<body><main><h1>Tuition</h1><p>The web app is not built. Run <code>npm run build:web</code>
(or <code>scripts/setup</code>) and reload. The API is at <a href="/docs">/docs</a>.</p></main>
</body></html>"""


def is_reserved(path: str) -> bool:
    """Whether `path` belongs to the API or operations endpoints rather than the web app."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED_PREFIXES)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    """CSP of the app shell: own scripts only; reads from each chain's RPC; WalletConnect if on."""
    connect = ["'self'"]
    for network in settings.networks:
        rpc = _origin(network.public_rpc_url or network.rpc_url)
        if rpc and rpc not in connect:
            connect.append(rpc)
    if settings.walletconnect_project_id:
        connect.extend(WALLETCONNECT_ORIGINS)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "frame-src 'self' https://verify.walletconnect.org https://verify.walletconnect.com",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def mount_web(app: FastAPI, dist: Path | None = None) -> None:
    """Serve the built front end; call it last in `create_app` (its fallback route is greedy)."""
    dist = (dist or DIST_DIR).resolve()
    index = dist / "index.html"
    if not index.exists():
        logger.warning("web app not built (%s missing): run `npm run build:web`", index)
    assets = dist / "assets"
    if assets.is_dir():
        app.mount("/assets", _ImmutableStatic(directory=assets), name="web-assets")

    def shell(request: Request) -> Response:
        services = getattr(request.app.state, "services", None)
        settings = getattr(services, "settings", None) or get_settings()
        headers = {
            "Cache-Control": "no-cache",
            "Content-Security-Policy": content_security_policy(settings),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
        }
        if not index.exists():
            return HTMLResponse(NOT_BUILT_PAGE, status_code=503, headers=headers)
        return FileResponse(index, media_type="text/html", headers=headers)

    @app.get("/", include_in_schema=False)
    async def web_index(request: Request) -> Response:
        return shell(request)

    @app.get("/{path:path}", include_in_schema=False)
    async def web_fallback(path: str, request: Request) -> Response:
        url_path = "/" + path
        if is_reserved(url_path):
            raise HTTPException(status_code=404, detail=f"No route {request.method} {url_path}.")
        # A real file at the top of dist (favicon.svg, robots.txt...), never outside it.
        if path and "/" not in path:
            candidate = (dist / path).resolve()
            if candidate.parent == dist and candidate.is_file() and candidate.name != "index.html":
                return FileResponse(candidate, headers={"Cache-Control": "public, max-age=3600"})
        if path.startswith("assets/"):
            # A stale bundle name: answer 404, not HTML where a script is expected.
            raise HTTPException(status_code=404, detail="No such asset.")
        return shell(request)


class _ImmutableStatic(StaticFiles):
    """Vite's asset names carry a content hash: cache them forever."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response
