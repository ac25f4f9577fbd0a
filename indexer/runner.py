"""`tuition indexer`: one process per chain, with standby, metrics, and a loud halt."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, inspect
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from backend.chain.deployment import Deployment, load_deployment
from backend.core.config import IndexerSettings, Settings, get_settings
from backend.core.db import SQLITE_BEGIN_OPTION, enable_sqlite_transactions, make_engine
from indexer import metrics
from indexer.decoding import LogDecoder
from indexer.engine import Indexer, ReorgTooDeepError
from indexer.heads import HeadWatcher
from indexer.lock import LeaderLock, acquire, leader_lock
from indexer.progress import BackfillProgress
from indexer.rpc import RpcClient
from indexer.sink import EffectSink

log = logging.getLogger(__name__)


EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_HALTED = 3

INDEXER_TABLES = ("indexer_checkpoints", "indexer_blocks", "indexer_applied_logs", "indexer_reorgs")


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_cache(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_indexer_engine(url: str, **kwargs: Any) -> Engine:
    """The indexer's sync engine: orjson for JSON columns; on SQLite, real SAVEPOINTs (the
    backend's grant uses them) and BEGIN IMMEDIATE, so the indexer queues behind the API's
    writes instead of failing to upgrade a read lock."""
    engine = make_engine(url, json_serializer=_json_serializer, **kwargs)
    if engine.dialect.name == "sqlite":
        enable_sqlite_transactions(engine)
        # Bulk inserts land at random places of several indexes (uuids, addresses): a 64 MB
        # page cache instead of the default 2 MB keeps them in memory. Registered on the engine
        # itself, before the execution options below derive another one from it.
        sa_event.listen(engine, "connect", _sqlite_cache)
        engine = engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    return engine


def stream_key(deployment: Deployment) -> str:
    """The checkpoint key: a redeployment on the same chain starts a new stream."""
    return f"{deployment.network}:{(deployment.market or '').lower()}"


def default_sink(settings: IndexerSettings, deployment: Deployment) -> EffectSink:
    """The sink that writes through the backend's domain services."""
    from indexer.handlers import BackendSink

    return BackendSink(
        chain_id=deployment.chain_id,
        access_confirmations=settings.access_confirmations,
        confirmations=settings.confirmations,
        market=deployment.market,
        certificate=deployment.certificate,
    )


def run(
    settings: Settings | None = None,
    indexer_settings: IndexerSettings | None = None,
    *,
    sink_factory: Callable[[IndexerSettings, Deployment], EffectSink] | None = None,
    stop: threading.Event | None = None,
    install_signals: bool = True,
) -> int:
    """Run the indexer until stopped; returns the process exit code.

    0 after a clean stop, 2 on a configuration error, 3 when halted by a reorg deeper than the
    window (an operator must look). A lost lock or database sends the process back to standby.
    """
    settings = settings or get_settings()
    ixs = indexer_settings or settings.indexer
    stop = stop or threading.Event()
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    path: Path = ixs.deployment_file or settings.deployment_file
    try:
        deployment = load_deployment(path)
        decoder = LogDecoder.for_deployment(deployment)
    except Exception as exc:
        log.error("cannot load the deployment: %s", exc)
        return EXIT_CONFIG
    rpc = RpcClient(settings.rpc_url, timeout=ixs.rpc_timeout)
    try:
        node_chain = rpc.chain_id()
    except Exception as exc:
        log.error("cannot reach the node at %s: %s", settings.rpc_url, exc)
        return EXIT_CONFIG
    chain_id = deployment.chain_id
    if not node_chain == chain_id == settings.chain_id:
        log.error(
            "chain id mismatch: node %s, deployment %s, settings %s",
            node_chain,
            chain_id,
            settings.chain_id,
        )
        return EXIT_CONFIG

    engine = make_indexer_engine(settings.database_url.get_secret_value())
    missing = [t for t in INDEXER_TABLES if not inspect(engine).has_table(t)]
    if missing:
        log.error("missing tables %s: run `tuition db upgrade` first", ", ".join(missing))
        return EXIT_CONFIG
    sessions = sessionmaker(engine, expire_on_commit=False)

    if ixs.metrics_port is not None:
        metrics.serve(ixs.metrics_port, ixs.metrics_host)
        log.info("metrics on http://%s:%d/metrics", ixs.metrics_host, ixs.metrics_port)

    label = str(chain_id)
    stream = stream_key(deployment)
    lock = leader_lock(engine, chain_id)
    sink = (sink_factory or default_sink)(ixs, deployment)
    try:
        # A leader that loses its lock or its database (a restart, a failover) stops writing at
        # once and stands by again: the checkpoint lives in the database, so whoever leads next
        # resumes exactly where the last committed batch ended.
        while not stop.is_set():
            log.debug("chain %s: waiting for the indexing lock", chain_id)
            if not acquire(lock, stop, ixs.standby_interval, chain_id):
                break
            indexer = Indexer(
                rpc=rpc,
                session_factory=sessions,
                sink=sink,
                chain_id=chain_id,
                stream=stream,
                addresses=deployment.addresses,
                start_block=(
                    ixs.start_block if ixs.start_block is not None else deployment.deploy_block
                ),
                settings=ixs,
                decoder=decoder,
                heads=HeadWatcher(settings.ws_url, poll_interval=ixs.poll_interval),
                progress=BackfillProgress(chain_id, bar=ixs.progress),
            )
            log.info(
                "chain %s: indexing %s from %s (stream %s)",
                chain_id,
                ", ".join(deployment.addresses),
                settings.rpc_url,
                stream,
            )
            metrics.ACTIVE.labels(label).set(1)
            try:
                lead(indexer, lock, stop)
            except ReorgTooDeepError:
                return EXIT_HALTED
            except DBAPIError as exc:
                log.warning("chain %s: database error, standing by again: %s", chain_id, exc)
            finally:
                metrics.ACTIVE.labels(label).set(0)
                lock.release()
            if not stop.is_set():
                stop.wait(ixs.standby_interval)
    finally:
        lock.release()
        rpc.close()
        engine.dispose()
    return EXIT_OK


def lead(indexer: Indexer, lock: LeaderLock, stop: threading.Event) -> None:
    """Index while the lock is held: returns when `stop` is set or when the lock was lost."""
    term = threading.Event()  # this leadership term; `stop` ends the process
    done = threading.Event()

    def watchdog() -> None:
        # A leader whose lock connection died may already have been replaced: stop writing.
        checks = 0
        while not done.is_set():
            if stop.wait(0.25):
                term.set()
                return
            checks += 1
            if checks % 8 == 0 and not lock.held():
                log.warning("chain %s: lost the indexing lock", indexer.chain_id)
                term.set()
                return

    guard = threading.Thread(target=watchdog, name="lock-watchdog", daemon=True)
    guard.start()
    try:
        indexer.run(term)
    finally:
        done.set()
        guard.join()


def configure_logging(level: int = logging.INFO) -> None:
    """Plain log lines on stderr (rich handles the progress bar)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
