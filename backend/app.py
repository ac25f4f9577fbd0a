"""The API application: `create_app()` wires settings, database, chain, Stripe, routers,
middleware and error handlers; `run_api()` serves it (`tuition api`)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from pydantic import SecretStr
from redis.asyncio import Redis as AsyncRedis

from backend.access.cache import AccessCache
from backend.access.router import ACCESS_OPERATION, ACCESS_PATH, access_route
from backend.access.router import router as access_router
from backend.access.schemas import AccessOut
from backend.account.router import profile_router
from backend.account.router import router as me_router
from backend.admin.router import router as admin_router
from backend.api.deps import Services
from backend.auth.deps import admin_principal, current_principal
from backend.auth.router import router as auth_router
from backend.catalog.router import router as catalog_router
from backend.catalog.service import seed_tokens
from backend.chain.client import ChainClient, Web3ChainClient
from backend.chain.deployment import Deployment, current_deployment
from backend.checkout.router import router as checkout_router
from backend.core import migrate
from backend.core.config import Settings, get_settings
from backend.core.db import Database
from backend.core.errors import error_response, install_error_handlers
from backend.core.logging import configure_logging
from backend.core.metrics import POOLS, render_metrics
from backend.core.middleware import OriginCheckMiddleware, RequestContextMiddleware
from backend.core.openapi import install_openapi
from backend.core.ratelimit import RateLimiter, make_rate_limiter
from backend.integrations.stripe_gateway import StripeGateway
from backend.learning.router import router as learning_router
from backend.orders.router import router as orders_router
from backend.payouts.connect import ready_providers
from backend.provider.router import public_router as providers_router
from backend.provider.router import router as provider_router
from backend.users.service import admin_addresses
from backend.verification.router import router as verification_router
from backend.webhooks.router import router as webhooks_router

logger = logging.getLogger("tuition.api")

API_PREFIX = "/api/v1"
API_VERSION = "1.0.0"


class BrokerProbe:
    """Whether Redis (the worker's broker and the rate limiter's store) answers a PING; always
    true without Redis (the embedded broker of a laptop is a file)."""

    def __init__(self, redis_url: SecretStr | None) -> None:
        self._client = (
            AsyncRedis.from_url(
                redis_url.get_secret_value(), socket_timeout=1.0, socket_connect_timeout=1.0
            )
            if redis_url is not None
            else None
        )

    async def answers(self) -> bool:
        if self._client is None:
            return True
        try:
            return bool(await self._client.ping())
        except Exception as exc:
            logger.warning("readiness check failed: Redis: %s", exc)
            return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _ops_router(broker: BrokerProbe) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"description": "Not ready"}})
    async def readyz(request: Request) -> Any:
        """Ready to serve: the database answers at the head revision, the broker answers, and
        the contracts' deployment file is there (load balancers and compose health checks)."""
        services: Services = request.app.state.services
        try:
            async with services.db.connect() as conn:
                current = await conn.run_sync(migrate.current_of)
        except Exception as exc:
            logger.warning("readiness check failed: %s", exc)
            return error_response(503, "database_unavailable", "the database does not answer")
        heads = migrate.heads()
        if set(current) != set(heads):
            return error_response(
                503,
                "migrations_pending",
                f"database at {list(current)}, code expects {list(heads)}: "
                "run `tuition db upgrade`",
            )
        if not await broker.answers():
            return error_response(503, "broker_unavailable", "Redis does not answer")
        deployment = services.deployment
        if deployment.market is None or deployment.certificate is None:
            return error_response(
                503,
                "not_deployed",
                f"no contracts deployed: {services.settings.deployment_file} is missing or "
                "unusable (run `tuition deploy`)",
            )
        return {"status": "ready", "revision": ",".join(current)}

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    return router


def _access_cache(settings: Settings, db: Database) -> AccessCache | None:
    """This process's access cache: PostgreSQL only, unless turned off."""
    if settings.access_cache_entries == 0 or not db.can_listen:
        return None
    listen_url = settings.database_listen_url
    return AccessCache(
        partial(db.listen_connection, listen_url.get_secret_value() if listen_url else None),
        max_entries=settings.access_cache_entries,
        max_staleness=settings.access_cache_max_staleness,
    )


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    chain: ChainClient | None = None,
    stripe: StripeGateway | None = None,
    rate_limiter: RateLimiter | None = None,
    deployment: Deployment | None = None,
    seed: bool = True,
) -> FastAPI:
    """Build the API. Everything not passed is built from `settings` (tests pass fakes)."""
    settings = settings or get_settings()
    owns_database = database is None
    services = Services(
        settings=settings,
        db=database
        or Database.from_url(
            settings.database_url.get_secret_value(), pool_size=settings.database_pool_size
        ),
        chain=chain or Web3ChainClient(settings.rpc_url),
        stripe=stripe or StripeGateway(settings),
        rate_limiter=rate_limiter
        or make_rate_limiter(
            settings.redis_url.get_secret_value() if settings.redis_url else None,
            settings.auth_rate_limit,
        ),
        deployment_source=(lambda: deployment)
        if deployment is not None
        else partial(current_deployment, settings.deployment_file),
        admins=admin_addresses(settings),
        card_ready=ready_providers,
        chains={
            n.chain_id: Web3ChainClient(n.rpc_url)
            for n in settings.networks
            if n.chain_id != settings.chain_id
        },
        deployment_sources={
            n.chain_id: partial(current_deployment, settings.for_network(n.name).deployment_file)
            for n in settings.networks
            if n.chain_id != settings.chain_id
        },
    )
    broker = BrokerProbe(settings.redis_url)
    access_cache = _access_cache(settings, services.db)
    POOLS.source = services.db.pool_usage  # this process's pools on /metrics

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if seed:
            try:
                async with services.db.session() as session:
                    await session.run_sync(seed_tokens, settings, services.deployment.tokens)
                    # Every other configured chain's tokens, from its own deployment file.
                    for network in settings.networks:
                        if network.name == settings.network:
                            continue
                        other = settings.for_network(network.name)
                        deployed = current_deployment(other.deployment_file).tokens
                        await session.run_sync(seed_tokens, other, deployed)
            except Exception as exc:  # not migrated yet: /readyz says so
                logger.warning("could not seed tokens at startup: %s", exc)
        # Everything loaded so far (modules, routes, schemas: ~200k objects) lives as long as
        # the process: keep it out of the cyclic GC, whose full passes over it otherwise stall
        # requests for ~100 ms.
        gc.collect()
        gc.freeze()
        if access_cache is not None:
            access_cache.start()
        yield
        if access_cache is not None:
            await access_cache.stop()
        await broker.close()
        if owns_database:
            await services.db.dispose()

    app = FastAPI(
        title="Tuition API",
        version=API_VERSION,
        description=(
            "Sell and buy online courses with crypto or by card; sign in with Ethereum; "
            'soulbound certificates. Errors are always `{"error": {"code", "message"}}`; '
            "amounts are integer base units sent as strings."
        ),
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.access_cache = access_cache
    install_error_handlers(app)
    # The hot path first, as a bare ASGI endpoint (see AccessCheckEndpoint).
    app.router.routes.insert(0, access_route(API_PREFIX, access_cache))

    # Each domain router directly on the app (nesting costs FastAPI a recursive match per
    # request).
    for router in (
        access_router,
        auth_router,
        profile_router,
        catalog_router,
        learning_router,
        orders_router,
        checkout_router,
        webhooks_router,
        me_router,
        provider_router,
        providers_router,
        verification_router,
        admin_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(_ops_router(broker))
    from backend.web.config_router import router as web_config_router
    from backend.web.router import mount_web

    app.include_router(web_config_router)
    mount_web(app)  # last: its SPA fallback route answers every other GET
    install_openapi(
        app,
        signed_in=current_principal,
        admin=admin_principal,
        extra_operations={API_PREFIX + ACCESS_PATH: {"get": ACCESS_OPERATION}},
        models=(AccessOut,),
    )

    # Innermost first: the Origin check sees requests after CORS preflights were answered;
    # the request context (id, timing, access log) wraps everything.
    app.add_middleware(
        OriginCheckMiddleware,
        allowed_origins=[settings.public_url, *settings.cors_origins],
        exempt_prefixes=[f"{API_PREFIX}/webhooks/"],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware, route_prefixes=(API_PREFIX,))
    return app


def _configure_process_logging() -> None:
    configure_logging("INFO")
    # /readyz reads the revision through Alembic, which would log two lines per probe.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


def serve_app() -> FastAPI:
    """The app factory uvicorn calls in each worker process (logging set up there too)."""
    _configure_process_logging()
    return create_app(get_settings().require("api"))


def run_api(
    host: str = "127.0.0.1", port: int = 8000, workers: int = 1, reload: bool = False
) -> None:
    """Serve the API with uvicorn (`tuition api`)."""
    import uvicorn

    _configure_process_logging()
    uvicorn.run(
        "backend.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        log_config=None,
        access_log=False,  # our middleware logs every request as JSON, with its request id
        proxy_headers=True,
        forwarded_allow_ips=get_settings().forwarded_allow_ips,
        server_header=False,
    )


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    # `backend.app:app` for ASGI servers and tests, created on first access.
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)
