"""Fixtures of the worker suite: one anvil with the real contracts per session, and per test a
fresh database (SQLite, or a PostgreSQL schema when TUITION_TEST_DATABASE_URL is set), the
worker's settings pointed at both, and Celery in eager mode.
"""

from __future__ import annotations

import importlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.anvil import Anvil
from support.market import Deployed, deploy
from support.worker import WorkerEnv, reset_settings

from backend.core.config import get_settings
from backend.core.db import Base, reset_process_engine
from backend.worker.celery_app import app, configure
from backend.worker.chain import reset_chain
from backend.worker.runtime import reset_runtime

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TUITION_TEST_REDIS_URL")

# Every table of the database on Base.metadata: the API's, the indexer's and the worker's.
for _module in ("backend.models", "indexer.models", "backend.worker.models"):
    importlib.import_module(_module)


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One automining anvil for the session."""
    node = Anvil()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="session")
def deployed(anvil: Anvil, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """CourseMarket and CourseCertificate, the operator's roles, a few courses."""
    return deploy(anvil, tmp_path_factory.mktemp("deployments"))


def _pg_url(schema: str) -> str:
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A database with every table, private to the test."""
    from backend.core.db import make_engine

    schema = None
    if PG_URL:
        schema = f"wk_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = _pg_url(schema)
    else:
        url = f"sqlite:///{tmp_path / 'tuition.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    try:
        yield url
    finally:
        reset_process_engine()
        if schema and PG_URL:
            with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def wenv(
    database_url: str, deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerEnv]:
    """The worker configured for this test's database and the session's chain, Celery eager."""
    yield from _worker_env(database_url, deployed, tmp_path, monkeypatch)


@pytest.fixture
def own_wenv(
    database_url: str, anvil: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkerEnv]:
    """`wenv` over contracts of the test's own: scans of the market's logs (reconciliation)
    see only what this test did."""
    deployed = deploy(anvil, tmp_path / "own-deployment", n_courses=3)
    yield from _worker_env(database_url, deployed, tmp_path, monkeypatch)


def _worker_env(
    database_url: str,
    deployed: Deployed,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env_changes: dict[str, str | None] | None = None,
) -> Iterator[WorkerEnv]:
    env = WorkerEnv.build(database_url, deployed, tmp_path)
    for key, change in (env_changes or {}).items():
        if change is None:
            env.env.pop(key, None)
            monkeypatch.delenv(key, raising=False)
        else:
            env.env[key] = change
    for key, value in env.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TUITION_REDIS_URL", raising=False)
    reset_settings()
    configure(app)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        yield env
    finally:
        app.conf.task_always_eager = False
        app.conf.task_eager_propagates = False
        reset_process_engine()
        reset_chain()
        reset_runtime()
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def second_anvil() -> Iterator[Anvil]:
    """A second chain (chain id 31338) for the tests of a worker serving two chains."""
    node = Anvil(chain_id=31338)
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def two_chains(
    database_url: str,
    anvil: Anvil,
    second_anvil: Anvil,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[WorkerEnv, Deployed, Deployed]]:
    """The worker configured with two networks ("local" on `anvil`, its TUITION_NETWORK, and
    "local-b" on `second_anvil`), fresh contracts on both: (env, first, second)."""
    directory = tmp_path / "deployments"
    first = deploy(anvil, directory, n_courses=2, network="local")
    second = deploy(second_anvil, directory, n_courses=2, network="local-b")
    networks = [
        {"name": "local", "chain_id": anvil.chain_id, "rpc_url": anvil.url},
        {"name": "local-b", "chain_id": second_anvil.chain_id, "rpc_url": second_anvil.url},
    ]
    changes: dict[str, str | None] = {
        "TUITION_NETWORKS": json.dumps(networks),
        "TUITION_RPC_URL": None,
        "TUITION_CHAIN_ID": None,
    }
    for env in _worker_env(database_url, first, tmp_path, monkeypatch, changes):
        yield env, first, second


@pytest.fixture
def redis_url() -> str:
    """The Redis of TUITION_TEST_REDIS_URL on db 5 (tests skip without it)."""
    if not REDIS_URL:
        pytest.skip("TUITION_TEST_REDIS_URL is not set")
    base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
    return f"{base}/5"
