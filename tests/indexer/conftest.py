"""Fixtures of the indexer suite: anvil nodes, the emitter contract, a database per test.

SQLite by default; PostgreSQL (a fresh schema per test) when TUITION_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from support.anvil import Anvil
from support.emitter import Emitter, compile_emitter

import backend.models  # noqa: F401  (registers the API tables)
import indexer.models  # noqa: F401
from backend.core.db import Base
from backend.devtools.rpc_proxy import ProxyConfig, RpcProxy
from indexer.runner import make_indexer_engine

PG_URL = os.environ.get("TUITION_TEST_DATABASE_URL")


@dataclass
class Db:
    """A test database: URL (usable by subprocesses too), engine and session factory."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    dialect: str


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def db_factory(tmp_path: Path) -> Iterator[Callable[[], Db]]:
    """Makes databases with every table, private to the test (dropped afterwards)."""
    made: list[tuple[Db, str | None]] = []

    def make() -> Db:
        schema = None
        if PG_URL:
            schema = f"ix_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            url = _pg_schema_url(PG_URL, schema)
        else:
            url = f"sqlite:///{tmp_path / f'tuition-{len(made)}.db'}"
        engine = make_indexer_engine(url)
        Base.metadata.create_all(engine)
        handle = Db(url, engine, sessionmaker(engine, expire_on_commit=False), engine.dialect.name)
        made.append((handle, schema))
        return handle

    yield make
    for handle, schema in made:
        handle.engine.dispose()
        if schema:
            with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def db(db_factory: Callable[[], Db]) -> Db:
    """A database with every table, private to the test."""
    return db_factory()


@pytest.fixture(scope="session")
def emitter_artifact(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The compiled IndexerLogEmitter (solcjs, cached across runs)."""
    cache = Path(str(pytestconfig.cache.mkdir("indexer-emitter")))
    return compile_emitter(cache)


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    """A fresh automining anvil."""
    node = Anvil()
    try:
        yield node
    finally:
        node.close()


# The caps of a hosted provider, scaled to test chains: ranges of more than 16 blocks and answers
# of more than 60 logs are refused (no test block holds more than 60 of the indexed logs).
REMOTE = ProxyConfig(delay=0.005, max_block_range=16, max_logs=60)


@pytest.fixture(params=["direct", "remote"])
def rpc_url(request: pytest.FixtureRequest, anvil: Anvil) -> Iterator[str]:
    """Where the indexer reads the chain: anvil itself, or anvil behind the hosted-RPC-like
    proxy (latency, eth_getLogs capped by blocks and by results, with providers' errors)."""
    if request.param == "direct":
        yield anvil.url
        return
    proxy = RpcProxy(anvil.url, REMOTE).start()
    try:
        yield proxy.url
    finally:
        proxy.stop()


@pytest.fixture
def emitter(anvil: Anvil, emitter_artifact: dict[str, Any]) -> Emitter:
    """An emitter deployed on the test's anvil (stands in for CourseMarket)."""
    return Emitter(anvil, emitter_artifact)


@pytest.fixture
def cert_emitter(anvil: Anvil, emitter_artifact: dict[str, Any]) -> Emitter:
    """A second emitter (stands in for CourseCertificate)."""
    return Emitter(anvil, emitter_artifact)
