"""FastAPI dependencies every router shares: the app's services, one DB transaction per request.

Who is calling is `backend.auth.deps` (CurrentUser, OptionalUser, AdminUser).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from backend.chain.client import ChainClient
from backend.chain.deployment import Deployment
from backend.core.config import Settings
from backend.core.db import Database
from backend.core.errors import InvalidInputError
from backend.core.ratelimit import RateLimiter
from backend.integrations.stripe_gateway import StripeGateway

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Services:
    """Everything a request handler may need, built once per app (tests inject fakes)."""

    settings: Settings
    db: Database
    chain: ChainClient
    stripe: StripeGateway
    rate_limiter: RateLimiter
    # The deployment as of now: the file is re-read when it changes (`tuition deploy` may finish
    # after the API started), so no restart is needed. Tests pass a fixed one.
    deployment_source: Callable[[], Deployment]
    admins: frozenset[str] = field(default_factory=frozenset)
    # Which providers can be paid out by card (`payouts.connect.ready_providers`, wired by the
    # app so the catalog need not know the payouts domain).
    card_ready: Callable[[Session, set[str]], set[str]] | None = None
    # Readers and deployments of the other configured chains, by chain id (`chain` and
    # `deployment` are the API's own network's).
    chains: Mapping[int, ChainClient] = field(default_factory=dict)
    deployment_sources: Mapping[int, Callable[[], Deployment]] = field(default_factory=dict)

    def chain_for(self, chain_id: int) -> ChainClient:
        """The reader of configured chain `chain_id` (the current network's for its own id)."""
        if chain_id == self.settings.chain_id:
            return self.chain
        return self.chains[chain_id]

    def chain_id_of(self, requested: int | None) -> int:
        """The chain a request is about: `requested` when configured, None the API's network.

        Raises:
            InvalidInputError: a chain this deployment does not serve (`unknown_chain`).
        """
        if requested is None or requested == self.settings.chain_id:
            return self.settings.chain_id
        if requested not in self.deployment_sources:
            served = ", ".join(str(c) for c in sorted(self.settings.chain_ids))
            raise InvalidInputError(
                f"chain {requested} is not served here (chains: {served})", code="unknown_chain"
            )
        return requested

    def deployment_on(self, chain_id: int) -> Deployment:
        """The current deployment of configured chain `chain_id`."""
        if chain_id == self.settings.chain_id:
            return self.deployment
        return self.deployment_sources[self.chain_id_of(chain_id)]()

    def card_gate(self) -> Callable[[Session, set[str]], set[str]] | None:
        """The buyers' card-price filter under TUITION_CARD_REQUIRES_CONNECT, else None."""
        return self.card_ready if self.settings.card_requires_connect else None

    @property
    def deployment(self) -> Deployment:
        """The current deployment (the empty `Deployment()` before there is one)."""
        return self.deployment_source()


def get_services(request: Request) -> Services:
    """The app's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

# The chain a request is about: any configured chain id (`Services.chain_id_of`); none, the API's.
ChainIdQuery = Annotated[
    int | None,
    Query(alias="chainId", gt=0, le=2**53, description="A configured chain (default: the API's)."),
]


async def _db_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Commit before the response is sent (scope="function"), so a client never sees success
    # for a transaction that then fails to commit.
    services = get_services(request)
    async with services.db.session(write=request.method not in _SAFE_METHODS) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(_db_session, scope="function")]


def client_ip(request: Request) -> str:
    """The peer address (behind a proxy, run uvicorn with --proxy-headers to make it real)."""
    return request.client.host if request.client else "unknown"
