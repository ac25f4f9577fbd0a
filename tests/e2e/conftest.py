"""Fixtures of the end-to-end suite: the whole local stack started once for the session by
backend/devstack.py (anvil, contracts, migrated database, demo catalog,
Stripe fake, API, indexer, worker) on free ports in a temporary directory, and signed-in API
users with fresh funded wallets.

Database: SQLite in the stack's directory, or, when TUITION_TEST_DATABASE_URL is set, a fresh
PostgreSQL database created for the session and dropped afterwards. A database rather than a
schema because the API's asyncpg driver cannot take a `search_path` from the URL the way the
indexer's and worker's psycopg can. With TUITION_TEST_REDIS_URL the API's rate limiter and the
worker's broker use that Redis under a key prefix private to the session.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import make_url
from support.procs import wait_for
from support.stack import ApiUser, Chain, E2EStack

from backend.core.dev_accounts import DEMO_KEYS

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TUITION_TEST_REDIS_URL")


# ------------------------------------------------------------------ PostgreSQL


def _pg_admin_dsn() -> str:
    assert PG_URL
    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def _create_pg_database() -> tuple[str, str]:
    """A new empty database next to TUITION_TEST_DATABASE_URL's; returns (name, URL)."""
    import psycopg

    name = f"tuition_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    assert PG_URL
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    return name, url


def _drop_redis_keys(prefix: str) -> None:
    """Remove what the session's broker left in the shared Redis (bindings, unacked sets)."""
    import redis

    assert REDIS_URL
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        # WITH (FORCE): a service that ignored SIGTERM may still hold a connection.
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------ the stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    """anvil + contracts + migrated database + API + indexer + worker + Stripe fake."""
    from backend.devstack import DevStack, StackConfig, free_port

    state = tmp_path_factory.mktemp("e2e-stack")
    pg_name, database_url = (None, None)
    if PG_URL:
        pg_name, database_url = _create_pg_database()
    extra_env = {
        # Every test signs in a few fresh wallets; the default 30/min per IP is for humans.
        "TUITION_AUTH_RATE_LIMIT": "10000",
        # The demo admin wallet may grant and revoke access through the admin API.
        "TUITION_ADMIN_ADDRESSES": json.dumps([Account.from_key(DEMO_KEYS["admin"]).address]),
        # Keep the beat's liveness file with this stack, not in the shared /tmp.
        "TUITION_WORKER_ALIVE_FILE": str(state / "beat.alive"),
    }
    redis_prefix = f"e2e-{uuid.uuid4().hex[:12]}:"
    if REDIS_URL:
        extra_env["TUITION_REDIS_URL"] = REDIS_URL
        # Other suites may share this Redis db: our broker queue must not be theirs.
        extra_env["TUITION_WORKER_REDIS_KEY_PREFIX"] = redis_prefix
    config = StackConfig(
        rpc_port=free_port(),
        second_rpc_port=free_port(),  # the crypto rail is tested on both chains
        api_port=free_port(),
        stripe_port=free_port(),
        database_url=database_url,
        state_dir=state,
        deployments_dir=state / "deployments",
        network="e2etest",
        quiet=True,
        extra_env=extra_env,
    )
    dev = DevStack(config)
    running = E2EStack(
        api_url=config.api_url,
        rpc_url=config.rpc_url,
        stripe_url=config.stripe_url,
        database_url=config.db_url,
        state_dir=state,
        deployment={},
    )
    try:
        try:
            dev.start()
        except Exception as exc:
            dev.stop()
            pytest.fail(f"the local stack did not start: {exc}\n{running.logs()}")
        running.deployment = dev.deployment
        running.chains = {
            which: (f"http://127.0.0.1:{port}", dev.deployments[name])
            for which, (name, _chain_id, port) in zip(
                ("first", "second"), config.chains, strict=True
            )
        }
        yield running
    finally:
        dev.stop()
        if pg_name:
            _drop_pg_database(pg_name)
        if REDIS_URL:
            _drop_redis_keys(redis_prefix)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the services' logs to a failing test's report: the cause is usually in there."""
    report = yield
    if report.failed and call.when == "call" and "stack" in getattr(item, "fixturenames", ()):
        running = item.funcargs.get("stack")  # type: ignore[attr-defined]
        if isinstance(running, E2EStack):
            report.sections.append(("services' logs", running.logs()))
    return report


@pytest.fixture(scope="session")
def chain(stack: E2EStack, request: pytest.FixtureRequest) -> Chain:
    """The API's own chain, or the chain a test is parametrized with (BOTH_CHAINS)."""
    rpc_url, deployment = stack.chains[getattr(request, "param", "first")]
    return Chain(rpc_url, deployment)


@pytest.fixture(scope="session")
def catalog(stack: E2EStack, chain: Chain) -> dict[str, dict[str, Any]]:
    """The demo courses by title as the API lists them for `chain` (its on-chain ids and
    prices), once that chain's indexer has linked them all; each carries the test-side key
    `chainId` so quotes are made for that chain.

    The seed writes descriptions and lessons, the indexer links each row to its on-chain id and
    mirrors the token prices; the tests need both halves.
    """
    from backend.chain.deploy import DEMO_COURSES

    chain_id = chain.chain_id

    def linked() -> dict[str, dict[str, Any]] | None:
        reply = httpx.get(
            f"{stack.api_url}/api/v1/courses",
            params={"limit": 100, "chainId": chain_id},
            timeout=10,
        )
        reply.raise_for_status()
        by_title = {c["title"]: c | {"chainId": chain_id} for c in reply.json()["items"]}
        for spec in DEMO_COURSES:
            course = by_title.get(spec["title"])
            if course is None or course["onchainId"] is None:
                return None
            if len(course["prices"]) != len(spec["prices"]):
                return None
        return by_title

    return wait_for(linked, "the indexer to link the demo catalog to its on-chain courses")


# ------------------------------------------------------------------ people


@pytest.fixture
def sign_in(stack: E2EStack) -> Iterator[Callable[[LocalAccount], ApiUser]]:
    """Factory: an API client signed in (SIWE) as the given account."""
    users: list[ApiUser] = []

    def factory(account: LocalAccount) -> ApiUser:
        user = ApiUser(stack.api_url, account).sign_in()
        users.append(user)
        return user

    yield factory
    for user in users:
        user.close()


@pytest.fixture
def provider(sign_in: Callable[[LocalAccount], ApiUser]) -> ApiUser:
    """The demo provider (anvil account 2), who created every demo course on-chain."""
    return sign_in(Account.from_key(DEMO_KEYS["provider"]))


@pytest.fixture
def admin(sign_in: Callable[[LocalAccount], ApiUser]) -> ApiUser:
    """The demo admin (anvil account 0), an admin of the API too."""
    return sign_in(Account.from_key(DEMO_KEYS["admin"]))


@pytest.fixture
def learner(chain: Chain, sign_in: Callable[[LocalAccount], ApiUser]) -> ApiUser:
    """A fresh wallet with ether, signed in: nothing it owns can come from another test."""
    return sign_in(chain.new_account())


@pytest.fixture
def buyer(chain: Chain, sign_in: Callable[[LocalAccount], ApiUser]) -> ApiUser:
    """A fresh wallet with ether that pays for someone else."""
    return sign_in(chain.new_account())


@pytest.fixture
def recipient(chain: Chain, sign_in: Callable[[LocalAccount], ApiUser]) -> ApiUser:
    """A fresh wallet without ether that receives a gift."""
    return sign_in(chain.new_account(eth=0))
