#!/usr/bin/env python
"""Indexer benchmark: backfill throughput and purchase-to-access latency, on a local anvil.

    .venv/bin/python scripts/bench_indexer.py [--events 50000] [--samples 200]

(a) Backfill: N CoursePurchased events (500 per transaction, one block each), indexed from
    scratch through the real sink (orders, entitlements, two audit entries per purchase) into
    SQLite and PostgreSQL; events/s from the first fetch to the last commit. "pipeline": the
    engine alone (fetch, decode, applied-log rows, checkpoints; no backend records). Baseline: a
    naive web3.py pipeline on the same chain (`contract.events.CoursePurchased.get_logs` +
    the backend's ORM service per event).
(b) Latency: the indexer live (newHeads over WebSocket, 0 confirmations) and the API served by
    uvicorn; for each purchase, the time from its receipt to `GET /api/v1/courses/{id}/access`
    answering true.
(c) `--remote` (alone): 50,000 purchases (100 per block) spread over 500,000 blocks, read
    through backend/devtools/rpc_proxy.py (50 ms per HTTP request, eth_getLogs capped at 10,000
    blocks and 10,000 logs), into PostgreSQL with full effects: ours (ranges in flight at once),
    ours one range at a time, the naive web3.py pipeline through the same proxy (get_logs over
    2,000-block windows, one at a time, ORM per event; `--naive-events` of them), and the live
    indexer's calls per minute while idle. Merged into `--output` (docs/bench/indexer.json)
    under `--key`.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.anvil import Anvil  # noqa: E402
from support.emitter import Emitter, address, compile_emitter  # noqa: E402
from support.procs import free_port  # noqa: E402

import backend.models  # noqa: E402, F401
import indexer.models  # noqa: E402, F401
from backend.catalog.models import Course, CourseChain  # noqa: E402
from backend.core.config import IndexerSettings  # noqa: E402
from backend.core.db import Base, session_scope  # noqa: E402
from backend.devtools.rpc_proxy import ProxyConfig, RpcProxy  # noqa: E402
from backend.orders.service import record_crypto_purchase  # noqa: E402
from indexer.engine import Indexer  # noqa: E402
from indexer.handlers import BackendSink  # noqa: E402
from indexer.heads import HeadWatcher  # noqa: E402
from indexer.rpc import RpcClient  # noqa: E402
from indexer.runner import make_indexer_engine  # noqa: E402
from indexer.sink import NullSink  # noqa: E402

ZERO = "0x" + "00" * 20
NOREF = "0x" + "00" * 32
PROVIDER = address(0xA11CE)
PER_TX = 500
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------- databases


def sqlite_db(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    return f"sqlite:///{path}"


def pg_db(base: str, name: str, collate: str | None = None) -> str | None:
    """A fresh database `name` next to `base` (None when PostgreSQL is not reachable), with
    the server's default collation or `collate`."""
    options = f" TEMPLATE template0 LC_COLLATE '{collate}' LC_CTYPE '{collate}'" if collate else ""
    try:
        with psycopg.connect(base.replace("+psycopg", ""), autocommit=True, connect_timeout=3) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"{options}')
    except psycopg.Error as exc:
        log(f"PostgreSQL not available ({exc}); skipping it")
        return None
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def prepare(url: str) -> sessionmaker:
    engine = make_indexer_engine(url)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


# ---------------------------------------------------------------------- chain


def make_chain(artifact: dict[str, Any], events: int, *, prune: bool) -> tuple[Anvil, Emitter]:
    node = Anvil(args=["--prune-history"] if prune else [])
    em = Emitter(node, artifact)
    em.tx("courseCreated", 1, PROVIDER, 0, "Benchmark course")
    t0 = time.perf_counter()
    for i in range(events // PER_TX):
        first = 10**9 + i * PER_TX
        em.tx("purchases", 1, address(1), first, PER_TX, ZERO, 10**15, 10**13, gas=4_000_000)
    log(
        f"created {events:,} purchase events in {node.block_number()} blocks "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    return node, em


def indexer_for(
    node: Anvil, em: Emitter, sessions: sessionmaker, rpc_url: str | None = None, **settings: Any
) -> Indexer:
    ixs = IndexerSettings(**{"reorg_window": 4, "confirmations": 12, **settings})
    return Indexer(
        rpc=RpcClient(rpc_url or node.url),
        session_factory=sessions,
        sink=BackendSink(chain_id=node.chain_id, confirmations=ixs.confirmations),
        chain_id=node.chain_id,
        stream=f"bench:{em.address.lower()}",
        addresses=[em.address],
        start_block=em.deploy_block,
        settings=ixs,
        heads=HeadWatcher(
            node.ws_url if settings.get("ws") else None, poll_interval=ixs.poll_interval
        ),
    )


# ---------------------------------------------------------------------- (a) backfill


def bench_backfill(
    node: Anvil, em: Emitter, url: str, initial_range: int, *, pipeline_only: bool = False
) -> float:
    sessions = prepare(url)
    ix = indexer_for(node, em, sessions, initial_range=initial_range)
    if pipeline_only:  # the engine alone: fetch, decode, applied-log rows, checkpoints
        ix.sink = NullSink()
    ix.load()
    t0 = time.perf_counter()
    ix.catch_up()
    elapsed = time.perf_counter() - t0
    eps = ix.applied_total / elapsed
    what = "pipeline" if pipeline_only else "full"
    log(
        f"  {what:8s} {make_url(url).get_backend_name():10s} {ix.applied_total:,} events in "
        f"{elapsed:.2f}s = {eps:,.0f} events/s"
    )
    sessions.kw["bind"].dispose()
    return eps


# The tables a purchase writes to, parents first (foreign keys point backwards in this list).
WRITTEN = ("orders", "entitlements", "audit_log", "indexer_applied_logs")


def server_floor(url: str, events: int, without_action: str | None = None) -> float:
    """Events/s if the client cost nothing: the server writing the rows the backfill wrote.

    A second schema gets every table, index and foreign key (the same metadata), the catalog
    rows the purchases point at, and then, in one timed transaction, `INSERT ... SELECT` of the
    backfill's rows table by table: index maintenance, foreign-key checks and WAL, without any
    parsing or client round trips. An upper bound for any client-side design on this schema.
    With `without_action`, the audit entries of that action are left out (what one audit row
    per purchase instead of two would save the server).
    """
    engine = make_indexer_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql('DROP SCHEMA IF EXISTS "floor" CASCADE')
            conn.exec_driver_sql('CREATE SCHEMA "floor"')
        floor_engine = engine.execution_options(schema_translate_map={None: "floor"})
        Base.metadata.create_all(floor_engine)
        with engine.begin() as conn:
            for parent in ("courses",):
                conn.exec_driver_sql(f'INSERT INTO "floor"."{parent}" SELECT * FROM "{parent}"')
        with engine.begin() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for table in WRITTEN:
                where = ""
                if table == "audit_log" and without_action:
                    where = f" WHERE action <> '{without_action}'"
                conn.exec_driver_sql(
                    f'INSERT INTO "floor"."{table}" SELECT * FROM "{table}"{where}'
                )
        elapsed = time.perf_counter() - t0
    finally:
        engine.dispose()
    eps = events / elapsed
    what = f", without the {without_action} audit rows" if without_action else ""
    log(f"  floor    postgresql server alone{what}: {elapsed:.2f}s = {eps:,.0f} events/s")
    return eps


def bench_naive(
    node: Anvil,
    em: Emitter,
    url: str,
    limit: int,
    *,
    contract: Any = None,
    window: int = 1,
) -> float:
    """web3.py get_logs + process_log, then the backend's ORM service per event.

    `get_logs` over `window` blocks at a time (one by default), one request at a time, through
    `contract` (the emitter's own web3 contract by default; another provider's, e.g. a proxy).
    """
    sessions = prepare(url)
    contract = contract or em.contract
    head = contract.w3.eth.block_number
    with session_scope(sessions) as s:  # the course, as the indexer would have linked it
        s.add(
            Course(
                provider=PROVIDER,
                title="Benchmark course",
                chains=[CourseChain(chain_id=node.chain_id, onchain_id=1)],
            )
        )
    done = 0
    t0 = time.perf_counter()
    block = em.deploy_block
    while block <= head and done < limit:
        end = min(head, block + window - 1)
        events = contract.events.CoursePurchased.get_logs(from_block=block, to_block=end)
        with session_scope(sessions) as s:
            for ev in events:
                if done >= limit:
                    break
                a = ev["args"]
                record_crypto_purchase(
                    s,
                    chain_id=node.chain_id,
                    tx_hash=ev["transactionHash"].to_0x_hex(),
                    log_index=ev["logIndex"],
                    block_hash=ev["blockHash"].to_0x_hex(),
                    block_number=ev["blockNumber"],
                    course_onchain_id=a["courseId"],
                    buyer=a["buyer"],
                    recipient=a["recipient"],
                    token=a["token"],
                    amount=a["amount"],
                    fee=a["fee"],
                    order_ref=a["orderRef"],
                    confirmed=False,
                )
                done += 1
        block = end + 1
    elapsed = time.perf_counter() - t0
    eps = done / elapsed
    log(
        f"  naive/{make_url(url).get_backend_name():4s} {done:,} events in {elapsed:.2f}s = "
        f"{eps:,.0f} events/s ({window}-block windows)"
    )
    sessions.kw["bind"].dispose()
    return eps


# ---------------------------------------------------------------------- (c) remote


def make_spread_chain(
    artifact: dict[str, Any], events: int, blocks: int, per_tx: int
) -> tuple[Anvil, Emitter]:
    """`events` purchases, `per_tx` per block, spread evenly over about `blocks` blocks."""
    node = Anvil(args=["--prune-history"])
    em = Emitter(node, artifact)
    em.tx("courseCreated", 1, PROVIDER, 0, "Benchmark course")
    txs = events // per_tx
    gap = max(1, blocks // txs)
    t0 = time.perf_counter()
    for i in range(txs):
        node.rpc("anvil_mine", hex(gap - 1))
        first = 10**9 + i * per_tx
        em.tx("purchases", 1, address(1), first, per_tx, ZERO, 10**15, 10**13, gas=4_000_000)
    log(
        f"created {events:,} purchase events over {node.block_number():,} blocks, one block with "
        f"{per_tx} every {gap:,} ({time.perf_counter() - t0:.1f}s)"
    )
    return node, em


def bench_remote_ours(
    node: Anvil, em: Emitter, url: str, config: ProxyConfig, **settings: Any
) -> dict[str, Any]:
    """The indexer (real sink) through the proxy: events/s, blocks/s, calls per 1,000 events."""
    sessions = prepare(url)
    proxy = RpcProxy(node.url, config).start()
    try:
        ix = indexer_for(node, em, sessions, rpc_url=proxy.url, **settings)
        ix.load()
        first = ix.cp.number if ix.cp else 0
        proxy.reset_counts()
        t0 = time.perf_counter()
        ix.catch_up()
        elapsed = time.perf_counter() - t0
        assert ix.cp is not None
        result = {
            "events": ix.applied_total,
            "seconds": round(elapsed, 2),
            "events_per_s": round(ix.applied_total / elapsed),
            "blocks_per_s": round((ix.cp.number - first) / elapsed),
            "calls": proxy.calls,
            "http_requests": proxy.http_requests,
            "calls_per_1000_events": round(proxy.calls / ix.applied_total * 1000, 1),
            "calls_by_method": dict(proxy.counts),
            "refused_get_logs": proxy.refused,
            "throttled": proxy.throttled,
        }
        log(
            f"  ours     {ix.applied_total:,} events in {elapsed:.2f}s = "
            f"{result['events_per_s']:,} events/s, {result['blocks_per_s']:,} blocks/s; "
            f"{proxy.calls} calls ({result['calls_per_1000_events']} per 1,000 events) in "
            f"{proxy.http_requests} HTTP requests, {proxy.refused} refused, "
            f"{proxy.throttled} throttled"
        )
        return result
    finally:
        proxy.stop()
        sessions.kw["bind"].dispose()


def bench_remote_idle(
    node: Anvil,
    em: Emitter,
    url: str,
    config: ProxyConfig,
    seconds: float,
    block_time: int,
    by_block_time: bool,
) -> dict[str, Any]:
    """Calls per minute of the live indexer (polling, no WebSocket) at the head while nothing
    it indexes happens: the chain mines an empty block every `block_time` s (0: none)."""
    sessions = prepare(url)
    proxy = RpcProxy(node.url, config).start()
    stop = threading.Event()
    try:
        ix = indexer_for(node, em, sessions, rpc_url=proxy.url, poll_by_block_time=by_block_time)
        ix.catch_up()
        if block_time:
            node.rpc("evm_setIntervalMining", block_time)
        thread = threading.Thread(target=ix.run, args=(stop,), daemon=True)
        thread.start()
        time.sleep(max(3.0, 3 * block_time))  # at the head, the block time learned
        proxy.reset_counts()
        first = node.block_number()
        time.sleep(seconds)
        per_minute = proxy.calls / seconds * 60
        counts = dict(proxy.counts)
        blocks = node.block_number() - first
        stop.set()
        thread.join(timeout=30)
        lag = node.block_number() - (ix.cp.number if ix.cp else 0)
        what = f"a block every {block_time} s" if block_time else "no new blocks"
        mode = "polls by block time" if by_block_time else "polls every poll_interval"
        log(f"  live, idle ({what}, {mode}): {per_minute:.0f} calls/min {counts}")
        return {
            "block_time_s": block_time,
            "poll_by_block_time": by_block_time,
            "calls_per_minute": round(per_minute, 1),
            "calls_by_method": counts,
            "blocks": blocks,
            "lag_at_stop_blocks": lag,
        }
    finally:
        stop.set()
        if block_time:
            node.rpc("evm_setIntervalMining", 0)
        proxy.stop()
        sessions.kw["bind"].dispose()


def bench_remote_naive(
    node: Anvil, em: Emitter, url: str, config: ProxyConfig, limit: int, window: int
) -> float:
    """The naive pipeline through the proxy, `get_logs` windowed to fit the caps."""
    from web3 import HTTPProvider, Web3

    proxy = RpcProxy(node.url, config).start()
    try:
        w3 = Web3(HTTPProvider(proxy.url))
        contract = w3.eth.contract(address=em.contract.address, abi=em.contract.abi)
        return bench_naive(node, em, url, limit, contract=contract, window=window)
    finally:
        proxy.stop()


def bench_collation(
    node: Anvil, em: Emitter, config: ProxyConfig, args: argparse.Namespace
) -> dict[str, Any]:
    """The same backfill into a database collated "C" (byte order: every text column, the hex
    ones included) and into one with the server's default, alternating."""
    with psycopg.connect(args.pg_url.replace("+psycopg", ""), connect_timeout=3) as c:
        row = c.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        default = str(row.fetchone()[0])  # type: ignore[index]
    runs: dict[str, list[int]] = {"default": [], "C": []}
    for i in range(args.collation_runs):
        for variant in ("default", "C"):
            url = pg_db(
                args.pg_url,
                f"tuition_bench_collation_{variant.lower()}_{i}",
                collate="C" if variant == "C" else None,
            )
            assert url
            runs[variant].append(bench_remote_ours(node, em, url, config)["events_per_s"])
    result = {
        "server_default": default,
        "default_events_per_s": runs["default"],
        "c_events_per_s": runs["C"],
        "c_over_default": round(
            statistics.median(runs["C"]) / statistics.median(runs["default"]), 3
        ),
    }
    log(
        f"  collation: default ({default}) {runs['default']} vs C {runs['C']} events/s: "
        f"C/default = {result['c_over_default']}"
    )
    return result


def bench_remote(artifact: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Backfill through a hosted-RPC-like proxy (delay, caps), ours against naive web3.py."""
    config = ProxyConfig(
        delay=args.delay,
        max_block_range=args.max_block_range,
        max_logs=args.max_logs,
        rate_limit=args.rate_limit or None,
    )
    log(
        f"(c) remote: {args.events:,} purchases over {args.blocks:,} blocks through the RPC "
        f"proxy ({config})"
    )
    node, em = make_spread_chain(artifact, args.events, args.blocks, args.per_tx)
    results: dict[str, Any] = {"proxy": asdict(config), "events": args.events}
    try:
        pg = pg_db(args.pg_url, "tuition_bench_remote")
        assert pg, "the remote benchmark needs PostgreSQL"
        results["ours"] = bench_remote_ours(node, em, pg, config)
        pg_serial = pg_db(args.pg_url, "tuition_bench_remote_serial")
        assert pg_serial
        results["ours_one_request_at_a_time"] = bench_remote_ours(
            node, em, pg_serial, config, fetch_concurrency=1
        )
        pg_naive = pg_db(args.pg_url, "tuition_bench_remote_naive")
        assert pg_naive
        results["naive_events_per_s"] = round(
            bench_remote_naive(node, em, pg_naive, config, args.naive_events, args.naive_window),
            1,
        )
        results["naive_window_blocks"] = args.naive_window
        results["speedup_vs_naive"] = round(
            results["ours"]["events_per_s"] / results["naive_events_per_s"], 1
        )
        log(f"  ours / naive = {results['speedup_vs_naive']}x")
        if args.collation_runs:
            results["collation"] = bench_collation(node, em, config, args)
        results["live_idle"] = []
        for block_time, by_block_time in ((0, True), (2, False), (2, True)):
            pg_idle = pg_db(args.pg_url, "tuition_bench_remote_idle")
            assert pg_idle
            results["live_idle"].append(
                bench_remote_idle(
                    node, em, pg_idle, config, args.idle_seconds, block_time, by_block_time
                )
            )
    finally:
        node.close()
    return results


# ---------------------------------------------------------------------- (b) latency


def bench_latency(artifact: dict[str, Any], url: str, samples: int, tmp: Path) -> list[float]:
    """Indexer and API in their own processes (as deployed); purchases sent from here."""
    node = Anvil()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        em = Emitter(node, artifact)
        em.tx("courseCreated", 1, PROVIDER, 0, "Latency course")
        sessions = prepare(url)
        deployments = tmp / "deployments"
        deployments.mkdir(exist_ok=True)
        (deployments / "bench.json").write_text(orjson.dumps({
            "chainId": node.chain_id, "network": "bench", "deployBlock": em.deploy_block,
            "contracts": {"CourseMarket": {"address": em.address}},
        }).decode())  # fmt: skip
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUITION_")}
        env.update(
            TUITION_DATABASE_URL=url,
            TUITION_RPC_URL=node.url,
            TUITION_WS_URL=node.ws_url,
            TUITION_CHAIN_ID=str(node.chain_id),
            TUITION_NETWORK="bench",
            TUITION_DEPLOYMENTS_DIR=str(deployments),
            TUITION_INDEXER_POLL_INTERVAL="0.05",
            TUITION_INDEXER_PROGRESS="false",
        )
        level = os.environ.get("BENCH_INDEXER_LOGLEVEL", "WARNING")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "indexer", "--loglevel", level],
            cwd=ROOT, env=env,
        ))  # fmt: skip
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "backend.app:create_app", "--factory",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        ))  # fmt: skip
        deadline = time.monotonic() + 120
        course_id = None
        while course_id is None:
            with sessions() as s:
                course_id = s.scalar(
                    select(CourseChain.course_id).where(CourseChain.onchain_id == 1)
                )
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("the indexer did not start")
            time.sleep(0.1)
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}")
        try:
            check = f"/api/v1/courses/{course_id}/access"
            while True:
                try:
                    if http.get(check, params={"address": PROVIDER}).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError("the API did not start")
                time.sleep(0.1)
            latencies: list[float] = []
            for i in range(samples + 5):
                who = address(0x5EED0000 + i)
                tx = em.tx(
                    "purchased", 1, address(1), who, ZERO, 1, 0, NOREF, wait=False, gas=200_000
                )
                while node.rpc("eth_getTransactionReceipt", tx) is None:
                    time.sleep(0.0005)
                t0 = time.perf_counter()
                while not orjson.loads(http.get(check, params={"address": who}).content)[
                    "hasAccess"
                ]:
                    time.sleep(0.002)
                if i >= 5:  # the first few warm the processes up
                    latencies.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.02)
            return latencies
        finally:
            http.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
        node.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=200, help="latency samples")
    parser.add_argument(
        "--naive-events",
        type=int,
        default=1_000,
        help="events the naive pipeline indexes (it is slow)",
    )
    parser.add_argument("--pg-url", default=os.environ.get("TUITION_TEST_DATABASE_URL", DEFAULT_PG))
    parser.add_argument(
        "--initial-range",
        type=int,
        default=20,
        help="first eth_getLogs span (the sizer adapts from there)",
    )
    parser.add_argument(
        "--remote", action="store_true", help="only (c): backfill through the RPC proxy"
    )
    parser.add_argument("--blocks", type=int, default=500_000, help="--remote: chain length")
    parser.add_argument("--per-tx", type=int, default=100, help="--remote: purchases per block")
    parser.add_argument("--delay", type=float, default=0.05, help="--remote: s per request")
    parser.add_argument("--max-block-range", type=int, default=10_000)
    parser.add_argument("--max-logs", type=int, default=10_000)
    parser.add_argument("--rate-limit", type=float, default=0, help="calls/s (0: none)")
    parser.add_argument("--naive-window", type=int, default=2_000, help="--remote naive span")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--collation-runs", type=int, default=3, help="--remote: C-collated vs default, each"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "bench" / "indexer.json")
    parser.add_argument("--key", default="remote", help="--remote: the figures' key in --output")
    args = parser.parse_args()
    tmp = ROOT / "var" / "bench-indexer"
    tmp.mkdir(parents=True, exist_ok=True)
    artifact = compile_emitter(tmp / "cache")
    if args.remote:
        remote = bench_remote(artifact, args)
        saved = orjson.loads(args.output.read_bytes()) if args.output.exists() else {}
        saved[args.key] = remote
        args.output.write_bytes(orjson.dumps(saved, option=orjson.OPT_INDENT_2) + b"\n")
        print(orjson.dumps(remote).decode(), flush=True)
        return
    events = max(PER_TX, args.events // PER_TX * PER_TX)

    results: dict[str, Any] = {"events": events}
    node, em = make_chain(artifact, events, prune=True)
    try:
        log("(a) backfill, real sink (orders + entitlements + audit), events/s:")
        results["backfill_eps_sqlite"] = round(
            bench_backfill(node, em, sqlite_db(tmp / "bench.db"), args.initial_range)
        )
        pg = pg_db(args.pg_url, "tuition_bench_indexer")
        results["backfill_eps_postgres"] = (
            round(bench_backfill(node, em, pg, args.initial_range)) if pg else None
        )
        results["server_floor_eps_postgres"] = round(server_floor(pg, events)) if pg else None
        # One audit row per purchase instead of two, measured where it would show: the floor.
        results["server_floor_one_audit_row_eps_postgres"] = (
            round(server_floor(pg, events, without_action="order.paid")) if pg else None
        )
        results["pipeline_eps_sqlite"] = round(
            bench_backfill(node, em, sqlite_db(tmp / "pipeline.db"), args.initial_range,
                           pipeline_only=True)
        )  # fmt: skip
        pg2 = pg_db(args.pg_url, "tuition_bench_pipeline")
        results["pipeline_eps_postgres"] = (
            round(bench_backfill(node, em, pg2, args.initial_range, pipeline_only=True))
            if pg2
            else None
        )
        naive_events = min(args.naive_events, events)
        results["naive_eps_sqlite"] = round(
            bench_naive(node, em, sqlite_db(tmp / "naive.db"), naive_events)
        )
        pg_naive = pg_db(args.pg_url, "tuition_bench_naive")
        results["naive_eps_postgres"] = (
            round(bench_naive(node, em, pg_naive, naive_events)) if pg_naive else None
        )
        results["naive_eps"] = results["naive_eps_postgres"] or results["naive_eps_sqlite"]
        best = results["backfill_eps_postgres"] or results["backfill_eps_sqlite"]
        results["speedup_vs_naive"] = round(best / results["naive_eps"], 1)
    finally:
        node.close()

    log(f"(b) latency receipt -> access true, {args.samples} purchases at 0 confirmations:")
    lat_url = pg_db(args.pg_url, "tuition_bench_latency") or sqlite_db(tmp / "latency.db")
    latencies = bench_latency(artifact, lat_url, args.samples, tmp)
    results["access_latency_db"] = make_url(lat_url).get_backend_name()
    results["access_latency_p50_ms"] = round(statistics.median(latencies), 1)
    results["access_latency_p95_ms"] = round(percentile(latencies, 0.95), 1)
    results["access_latency_max_ms"] = round(max(latencies), 1)
    log(
        f"  p50 {results['access_latency_p50_ms']} ms, p95 {results['access_latency_p95_ms']} "
        f"ms, max {results['access_latency_max_ms']} ms ({results['access_latency_db']})"
    )
    print(orjson.dumps(results).decode(), flush=True)


if __name__ == "__main__":
    main()
