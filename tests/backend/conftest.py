"""Fixtures of the API suite: the app on a database rolled back after each test, a fake chain,
the Stripe stand-in (the real `stripe` SDK talks to it over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from support.api import (
    CERTIFICATE,
    CHAIN_ID,
    MARKET,
    STRIPE_KEY,
    Api,
    FakeChain,
    make_settings,
)
from support.db import MigratedDatabase, create_migrated_database, drop_migrated_database
from support.factories import seed_test_tokens

from backend.app import create_app
from backend.chain.deployment import Deployment
from backend.core.db import Database
from backend.core.ratelimit import MemoryRateLimiter
from backend.devtools.stripe_fake import StripeFake


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def stripe_fake() -> Iterator[StripeFake]:
    """The Stripe stand-in, serving on a free local port for the whole session."""
    fake = StripeFake(api_keys=STRIPE_KEY)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
async def api_db(migrated_db: MigratedDatabase) -> AsyncIterator[Database]:
    """The API's database, bound to one connection whose transaction is rolled back."""
    engine = migrated_db.async_engine(pool_size=1)
    connection = await engine.connect()
    outer = await connection.begin()
    try:
        yield Database(engine, bind=connection)
    finally:
        await outer.rollback()
        await connection.close()
        await engine.dispose()


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


@pytest.fixture(scope="session")
def shared_app(migrated_db: MigratedDatabase, stripe_fake: StripeFake) -> FastAPI:
    """One app per database backend: building FastAPI's routes takes ~0.4 s, so tests share it
    and swap its services (database connection, chain, Stripe client, settings) per test."""
    settings = make_settings(migrated_db.url, stripe_api_base=stripe_fake.api_base)
    return create_app(
        settings,
        database=Database(migrated_db.async_engine(pool_size=1)),
        chain=FakeChain(),
        rate_limiter=MemoryRateLimiter(1000),
        deployment=Deployment(chain_id=CHAIN_ID, market=MARKET, certificate=CERTIFICATE),
        seed=False,
    )


@pytest.fixture
async def api(
    shared_app: FastAPI,
    api_db: Database,
    migrated_db: MigratedDatabase,
    chain: FakeChain,
    stripe_fake: StripeFake,
) -> AsyncIterator[Api]:
    """The app under test on this test's rolled-back connection (tokens seeded here)."""
    settings = make_settings(migrated_db.url, stripe_api_base=stripe_fake.api_base)
    harness = Api.on_shared_app(
        shared_app, settings=settings, db=api_db, chain=chain, stripe_fake=stripe_fake
    )
    await harness.run(seed_test_tokens)
    yield harness


@pytest.fixture
async def committed_api(
    shared_app: FastAPI,
    migrated_db: MigratedDatabase,
    stripe_fake: StripeFake,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Api]:
    """The app on a private database whose transactions really commit (for concurrency tests:
    a rolled-back shared connection cannot show two transactions racing)."""
    private = create_migrated_database(migrated_db.backend, tmp_path_factory.mktemp("committed"))
    database = Database.from_url(private.url, pool_size=8, schema=private.schema)
    settings = make_settings(private.url, stripe_api_base=stripe_fake.api_base)
    chain = FakeChain()
    harness = Api.on_shared_app(
        shared_app, settings=settings, db=database, chain=chain, stripe_fake=stripe_fake
    )
    await harness.run(seed_test_tokens)
    try:
        yield harness
    finally:
        await database.dispose()
        drop_migrated_database(private)
