"""Helpers of the API tests: SIWE messages, a fake chain client, signed-in clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from eth_abi import decode, encode
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from sqlalchemy.orm import Session

from backend.auth.service import SiweMessage  # imported there without abnf's grammar warnings
from backend.chain.client import ChainError, selector
from backend.core.config import Settings
from backend.core.db import Database
from backend.core.ratelimit import MemoryRateLimiter
from backend.devtools.stripe_fake import sign_payload
from backend.integrations.stripe_gateway import StripeGateway

PUBLIC_URL = "http://tuition.test"
DOMAIN = "tuition.test"
CHAIN_ID = 31337
MARKET = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
CERTIFICATE = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
WEBHOOK_SECRET = "whsec_tuition_backend_tests"
STRIPE_KEY = "sk_test_tuition_backend"

T = TypeVar("T")


def signed_webhook_headers(body: bytes, *, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """Headers that make `body` a correctly signed Stripe webhook delivery, signed now."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign_payload(body, secret, int(time.time())),
    }


def iso(dt: datetime) -> str:
    """EIP-4361 time format."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def siwe_text(
    address: str,
    nonce: str,
    *,
    domain: str = DOMAIN,
    uri: str = PUBLIC_URL,
    chain_id: int = CHAIN_ID,
    issued_at: datetime | None = None,
    expiration: datetime | None = None,
    not_before: datetime | None = None,
    statement: str | None = "Sign in to Tuition.",
) -> str:
    """An EIP-4361 message as a wallet would show it."""
    fields: dict[str, Any] = {
        "domain": domain,
        "address": address,
        "uri": uri,
        "version": "1",
        "chain_id": chain_id,
        "nonce": nonce,
        "issued_at": iso(issued_at or datetime.now(UTC)),
        "statement": statement,
    }
    if expiration is not None:
        fields["expiration_time"] = iso(expiration)
    if not_before is not None:
        fields["not_before"] = iso(not_before)
    return SiweMessage(**fields).prepare_message()


def sign(account: LocalAccount, text: str) -> str:
    """EIP-191 personal_sign of `text`, 0x-hex."""
    return "0x" + account.sign_message(encode_defunct(text=text)).signature.hex()


@dataclass
class FakeChain:
    """A `ChainClient` with contract wallets (EIP-1271) and market balances set by tests."""

    # contract wallet -> signatures it accepts (per message hash)
    wallets: dict[str, set[tuple[bytes, bytes]]] = field(default_factory=dict)
    withdrawable: dict[tuple[str, str], int] = field(default_factory=dict)
    escrow: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # on-chain course id -> provider (CourseMarket.courseProvider; ids 1..max exist)
    courses: dict[int, str] = field(default_factory=dict)
    fee_bps: int = 500  # CourseMarket.feeBps()
    down: bool = False
    calls: list[tuple[str, bytes]] = field(default_factory=list)

    async def get_code(self, address: str) -> bytes:
        if self.down:
            raise ChainError("node down")
        return b"\x60\x80" if address in self.wallets else b""

    async def call(self, to: str, data: bytes) -> bytes:
        if self.down:
            raise ChainError("node down")
        self.calls.append((to, data))
        sel, args = data[:4], data[4:]
        if sel == selector("isValidSignature(bytes32,bytes)"):
            digest, signature = decode(["bytes32", "bytes"], args)
            ok = (bytes(digest), bytes(signature)) in self.wallets.get(to, set())
            return (bytes.fromhex("1626ba7e") if ok else b"\xff\xff\xff\xff") + b"\x00" * 28
        if sel == selector("withdrawableOf(address,address)"):
            payee, token = decode(["address", "address"], args)
            key = (payee.lower(), token.lower())
            return encode(["uint256"], [self.withdrawable.get(key, 0)])
        if sel == selector("escrowOf(address,address)"):
            provider, token = decode(["address", "address"], args)
            net, fee = self.escrow.get((provider.lower(), token.lower()), (0, 0))
            return encode(["uint256", "uint256"], [net, fee])
        if sel == selector("feeBps()"):
            return encode(["uint16"], [self.fee_bps])
        if sel == selector("courseCount()"):
            return encode(["uint256"], [max(self.courses, default=0)])
        if sel == selector("courseProvider(uint256)"):
            (course_id,) = decode(["uint256"], args)
            if course_id not in self.courses:
                raise ChainError("execution reverted: UnknownCourse")
            return encode(["address"], [self.courses[course_id]])
        raise ChainError("execution reverted")


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings of the API under test (nothing read from the environment's .env)."""
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "public_url": PUBLIC_URL,
        "chain_id": CHAIN_ID,
        "cookie_secure": False,
        "stripe_secret_key": STRIPE_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "auth_rate_limit": 1000,
        "redis_url": None,
        # The card rail's own tests sell for providers without Stripe Connect (the platform
        # collects); tests/backend/test_api_connect.py covers the default, which requires it.
        "card_requires_connect": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Api:
    """The app under test and ways to talk to it."""

    app: FastAPI
    settings: Settings
    db: Database
    chain: FakeChain
    stripe_fake: Any

    @classmethod
    def on_shared_app(
        cls, app: FastAPI, *, settings: Settings, db: Database, chain: FakeChain, stripe_fake: Any
    ) -> Api:
        """The session's shared app with this test's services swapped in (building FastAPI's
        routes takes ~0.4 s, so tests share one app per database backend)."""
        services = app.state.services
        services.settings = settings
        services.db = db
        services.chain = chain
        services.stripe = StripeGateway(settings)
        services.rate_limiter = MemoryRateLimiter(1000)
        services.admins = frozenset()
        services.chains = {}
        services.deployment_sources = {}
        return cls(app=app, settings=settings, db=db, chain=chain, stripe_fake=stripe_fake)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """A new client with its own cookie jar (and the site's Origin on every request)."""
        headers = {"Origin": PUBLIC_URL, **kwargs.pop("headers", {})}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False),
            base_url=PUBLIC_URL,
            headers=headers,
            **kwargs,
        )

    async def sign_in(self, client: httpx.AsyncClient, account: LocalAccount) -> str:
        """Sign `account` in on `client` (cookie set); returns the bearer token."""
        nonce = (await client.get("/api/v1/auth/nonce")).json()["nonce"]
        text = siwe_text(account.address, nonce)
        response = await client.post(
            "/api/v1/auth/verify", json={"message": text, "signature": sign(account, text)}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    @asynccontextmanager
    async def user(self, account: LocalAccount) -> AsyncIterator[httpx.AsyncClient]:
        """A client signed in as `account`."""
        async with self.client() as client:
            await self.sign_in(client, account)
            yield client

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(sync_session, ...)` in a committed (test-savepoint) transaction."""
        async with self.db.session() as session:
            result: T = await session.run_sync(lambda s: fn(s, *args, **kwargs))
            return result

    async def query(self, fn: Callable[[Session], T]) -> T:
        """Read through a session."""
        return await self.run(fn)

    async def deliver(
        self, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET
    ) -> httpx.Response:
        """POST a Stripe event to the webhook exactly as Stripe would sign it."""
        body, headers = self.stripe_fake.signed_payload(event, secret=secret)
        async with self.client() as client:
            return await client.post("/api/v1/webhooks/stripe", content=body, headers=headers)

    async def deliver_raw(self, body: bytes, *, secret: str = WEBHOOK_SECRET) -> httpx.Response:
        """POST any body to the webhook, correctly signed (as someone holding the secret)."""
        headers = signed_webhook_headers(body, secret=secret)
        async with self.client() as client:
            return await client.post("/api/v1/webhooks/stripe", content=body, headers=headers)
