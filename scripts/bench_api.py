#!/usr/bin/env python
"""Benchmark of the access check, the API's hot path (prints figures; not a test).

Throughput: migrate a private PostgreSQL schema (dropped afterwards), bulk-load 10,000 courses
and 100,000 entitlements, then at each connection count (10, 32, 64) serve, one at a time, in a
subprocess under the same uvicorn settings (one process, uvloop, httptools, no access log):
a bare FastAPI app of this script with one JSON endpoint (the baseline), the real app, and the
real app with its access cache turned off. `wrk` (2 threads, a Lua script cycling through
20,000 random existing and missing pairs) drives each for a fixed time after a 2 s warm-up.
The bare server must keep a core >= 90 % busy, or the load generator set the pace: the ratio
is then refused. Without `wrk` (scripts/setup installs it) nothing is measured.

Invalidation: two replicas of the real app on the same schema; for each of 100 admin grants,
both replicas answer true from their caches, the grant is revoked through replica A's admin
API, and both are polled until both answer false (time from the revoke's response). Then the
same with replica B's LISTEN connection (through a proxy) cut, and frozen (silent), just before
each revoke: the staleness bound must hold.

Prints each figure; writes docs/bench/api.json; the last line is the same JSON object.

    .venv/bin/python scripts/bench_api.py [--duration 10] [--connections 10 32 64]
        [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--revocations 100]
        [--skip-throughput] [--output docs/bench/api.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.devstack import free_port  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROVIDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
# The bare server must keep a core this busy, or the load generator set the pace.
SATURATED = 0.9


@dataclass
class Result:
    """One load phase."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_us: float = 0.0  # CPU time of the server process per request
    server_busy: float = 0.0  # the server process's CPU time over wall time (1.0 = a core)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ data


def _address(n: int) -> str:
    # Digits only: an EIP-55 checksum changes letters, so this is its own checksummed form
    # and the database can generate the same strings in SQL.
    return "0x" + f"{n:040d}"


def prepare_database(url: str, schema: str | None, courses: int, entitlements: int) -> None:
    """Migrate with Alembic, then bulk-insert courses and entitlements with INSERT ... SELECT
    (generated inside the database: a second, not minutes of Python)."""
    from backend.core import migrate
    from backend.core.db import make_engine, schema_connect_args

    migrate.upgrade(url, schema=schema)
    engine = make_engine(url, connect_args=schema_connect_args(url, schema, is_async=False))
    pg = engine.dialect.name == "postgresql"
    # Learner k (1-based) holds course ((k - 1) % courses) + 1: every course has entitlements.
    if pg:
        courses_sql = f"""
            INSERT INTO courses (id, provider, title, description, status, refund_window,
                                 created_at, updated_at)
            SELECT i, '{PROVIDER}', 'Course ' || i, '', 'published', 0, now(), now()
            FROM generate_series(1, {courses}) AS i"""
        entitlements_sql = f"""
            INSERT INTO entitlements (address, course_id, source, granted_at, granted_by,
                                      chain_status)
            SELECT '0x' || lpad(k::text, 40, '0'), ((k - 1) %% {courses}) + 1, 'crypto', now(),
                   'bench', 'recorded'
            FROM generate_series(1, {entitlements}) AS k"""
    else:
        now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
        courses_sql = f"""
            WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {courses})
            INSERT INTO courses (id, provider, title, description, status, refund_window,
                                 created_at, updated_at)
            SELECT i, '{PROVIDER}', 'Course ' || i, '', 'published', 0, {now}, {now} FROM seq"""
        entitlements_sql = f"""
            WITH RECURSIVE seq(k) AS
                (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < {entitlements})
            INSERT INTO entitlements (address, course_id, source, granted_at, granted_by,
                                      chain_status)
            SELECT printf('0x%040d', k), ((k - 1) % {courses}) + 1, 'crypto', {now}, 'bench',
                   'recorded'
            FROM seq"""
    with engine.begin() as conn:
        conn.exec_driver_sql(courses_sql)
        conn.exec_driver_sql(entitlements_sql)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def access_paths(courses: int, entitlements: int, count: int, seed: int = 7) -> list[str]:
    """Random paths: half existing (learner, course) pairs, half missing ones."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        k = rng.randrange(1, entitlements + 1)
        course = ((k - 1) % courses) + 1
        learner = k if i % 2 == 0 else entitlements + 1 + rng.randrange(10**6)
        paths.append(f"/api/v1/courses/{course}/access?address={_address(learner)}")
    return paths


# ------------------------------------------------------------------------------ server


def _uvicorn(app: Any, port: int) -> None:
    """The server settings both apps are measured with: one process, uvloop, httptools."""
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )


def bare_app() -> Any:
    """The baseline: a bare FastAPI JSON endpoint answering what the access check answers."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bare")
    async def bare() -> dict[str, Any]:
        return {"hasAccess": False, "source": None, "since": None}

    return app


def serve(url: str, schema: str | None, port: int, pool_size: int, overrides: str) -> None:
    """Child process: the real app under uvicorn (`overrides`: settings as JSON)."""
    import logging

    from backend.app import create_app
    from backend.chain.deployment import Deployment
    from backend.core.config import Settings
    from backend.core.db import Database

    logging.getLogger().setLevel(logging.WARNING)  # no per-request access log in the figures
    settings = Settings(_env_file=None, env="test", database_url=url, **json.loads(overrides))
    app = create_app(
        settings,
        database=Database.from_url(url, pool_size=pool_size, schema=schema),
        deployment=Deployment(),
        seed=False,
    )
    _uvicorn(app, port)


def start_server(mode_args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """Start this script in a server mode in a subprocess and wait until it answers."""
    import httpx

    port = free_port()
    args = [sys.executable, __file__, *mode_args, "--port", str(port)]
    proc = subprocess.Popen(args, cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"benchmark server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError("benchmark server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server subprocess (its own process group only)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ------------------------------------------------------------------------------ load

_WRK_SCRIPT = """
local paths = {}
local counter = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  counter = math.random(#paths)
end
function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end
function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    "BENCH {\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, "
    .. "\\"errors\\": %d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors))
end
"""


def run_wrk(base: str, paths: list[str], duration: float, connections: int) -> Result:
    """Drive the server with wrk (2 threads), random paths from a file."""
    with tempfile.TemporaryDirectory() as tmp:
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        script = Path(tmp) / "paths.lua"
        script.write_text(_WRK_SCRIPT)
        cmd = [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{max(1, int(duration))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base,
            "--",
            str(paths_file),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    data = json.loads(line[len("BENCH ") :])
    seconds = data["duration_us"] / 1e6
    return Result(
        rps=data["requests"] / seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=data["errors"],
    )


def load(
    base: str,
    paths: list[str],
    duration: float,
    connections: int,
    pid: int,
    profile: Path | None = None,
) -> Result:
    """Warm up briefly, then measure for `duration` seconds (server CPU read around it);
    with `profile`, py-spy samples the server meanwhile (its stacks written there)."""
    run_wrk(base, paths, min(2.0, duration), connections)
    spy = None
    if profile is not None:
        py_spy = str(Path(sys.executable).with_name("py-spy"))
        options = ["--duration", str(int(duration)), "--rate", "250", "--format", "raw"]
        spy = subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), *options, "--nonblocking", "-o", str(profile)],
            stdout=subprocess.DEVNULL,
        )
    cpu_before, wall_before = _cpu_seconds(pid), time.perf_counter()
    result = run_wrk(base, paths, duration, connections)
    cpu = _cpu_seconds(pid) - cpu_before
    if spy is not None:
        spy.wait(timeout=60)
        print(f"profile of the server's stacks: {profile} ({summarize_profile(profile)})")
    result.server_busy = cpu / (time.perf_counter() - wall_before)
    if result.requests:
        result.server_cpu_us = cpu / result.requests * 1e6
    return result


def summarize_profile(path: Path, top: int = 12) -> str:
    """The functions holding the most samples (self time) in a py-spy raw profile."""
    from collections import Counter

    own: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            own[stack.split(";")[-1]] += int(count)
    total = sum(own.values()) or 1
    return "; ".join(f"{frame} {n / total:.0%}" for frame, n in own.most_common(top))


# ------------------------------------------------------------------------------ main


def prepare_postgres(args: argparse.Namespace) -> str:
    """A private schema, migrated and loaded; returns its name."""
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_dsn(args.pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    started = time.perf_counter()
    prepare_database(args.pg_url, schema, args.courses, args.entitlements)
    print(
        f"migrated and loaded {args.courses:,} courses and {args.entitlements:,} entitlements "
        f"in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return schema


def drop_schema(pg_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(_dsn(pg_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _print(label: str, connections: int, result: Result) -> None:
    print(
        f"{label:<6} c={connections:<3} {result.rps:9.0f} req/s   p50 {result.p50_ms:7.2f} ms   "
        f"p99 {result.p99_ms:7.2f} ms   server CPU {result.server_cpu_us:5.0f} us/req, "
        f"busy {result.server_busy:4.0%}   ({result.requests:,} requests, {result.errors} errors)",
        flush=True,
    )


def _metric(base: str, name: str) -> float:
    """A sample's value on the server's /metrics (0 when absent)."""
    import httpx

    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _hit_share(base: str) -> float:
    lookups = {
        result: _metric(base, f'tuition_access_cache_lookups_total{{result="{result}"}}')
        for result in ("hit", "miss", "bypass")
    }
    total = sum(lookups.values())
    return lookups["hit"] / total if total else 0.0


def _measure_app(
    args: argparse.Namespace,
    schema: str,
    paths: list[str],
    connections: int,
    cache: bool,
    profile: Path | None = None,
) -> tuple[Result, float]:
    """Our access check at `connections`, with or without the cache; (result, hit share)."""
    import httpx

    overrides = {} if cache else {"access_cache_entries": 0}
    proc, base = start_server(_app_args(args, schema, overrides))
    try:
        sample = httpx.get(base + paths[0], timeout=5)
        assert sample.status_code == 200 and sample.json()["hasAccess"] is True, sample.text
        missing = httpx.get(base + paths[1], timeout=5)
        assert missing.json()["hasAccess"] is False, missing.text
        result = load(base, paths, args.duration, connections, proc.pid, profile)
        return result, _hit_share(base)
    finally:
        stop_server(proc)


def _app_args(args: argparse.Namespace, schema: str, overrides: dict[str, Any]) -> list[str]:
    return [
        "--serve",
        "--db-url",
        args.pg_url,
        "--schema",
        schema,
        "--pool-size",
        str(args.pool_size),
        "--settings",
        json.dumps(overrides),
    ]


def throughput(args: argparse.Namespace, schema: str) -> list[dict[str, Any]]:
    """Bare, ours and ours without the cache at each connection count, one server at a time
    (each alone on the machine with the load generator and PostgreSQL)."""
    paths = access_paths(args.courses, args.entitlements, args.paths)
    rows = []
    for connections in args.connections:
        bare_proc, bare_base = start_server(["--serve-bare"])
        try:
            bare = load(bare_base, ["/bare"], args.duration, connections, bare_proc.pid)
        finally:
            stop_server(bare_proc)
        ours, hits = _measure_app(args, schema, paths, connections, cache=True)
        profile = None
        if args.profile is not None and connections == max(args.connections):
            profile = args.profile
        uncached, _ = _measure_app(args, schema, paths, connections, False, profile)
        _print("bare", connections, bare)
        _print("access", connections, ours)
        print(f"       cache hits {hits:.1%} of access checks (warm-up included)")
        _print("nocache", connections, uncached)
        saturated = bare.server_busy >= SATURATED
        if saturated:
            print(
                f"access/bare at {connections} connections = {ours.rps / bare.rps:.0%} "
                f"(without the cache {uncached.rps / bare.rps:.0%})",
                flush=True,
            )
        else:
            print(
                f"REFUSED: the bare server was busy {bare.server_busy:.0%} of one core at "
                f"{connections} connections (< {SATURATED:.0%}): the load generator, not the "
                "server, set the pace, so no ratio is reported",
                flush=True,
            )
        rows.append(
            {
                "connections": connections,
                "bare": asdict(bare),
                "access": asdict(ours),
                "access_cache_hit_share": round(hits, 3),
                "access_without_cache": asdict(uncached),
                "access_over_bare": round(ours.rps / bare.rps, 3) if saturated else None,
                "access_without_cache_over_bare": (
                    round(uncached.rps / bare.rps, 3) if saturated else None
                ),
            }
        )
    return rows


# ------------------------------------------------------------------------------ invalidation

ADMIN_KEY = "0x" + "a1" * 32
BENCH_HOST = "bench.local"  # the SIWE domain the replicas expect (their public URL's host)
GRANTED_FROM = 10**9  # learners granted by an admin (revocable through the admin API)


def grant_for_revocation(pg_url: str, schema: str, count: int) -> list[tuple[int, str]]:
    """`count` admin grants (course 1), committed; their (course, address) pairs."""
    import psycopg

    with psycopg.connect(_dsn(pg_url), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(
            """
            INSERT INTO entitlements (address, course_id, source, granted_at, granted_by,
                                      chain_status)
            SELECT '0x' || lpad(k::text, 40, '0'), 1, 'grant', now(), 'bench', 'recorded'
            FROM generate_series(%s::bigint, %s::bigint) AS k""",
            (GRANTED_FROM, GRANTED_FROM + count - 1),
        )
    return [(1, _address(GRANTED_FROM + i)) for i in range(count)]


async def _sign_in(client: Any, key: str) -> str:
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from siwe import SiweMessage

    account = Account.from_key(key)
    nonce = (await client.get("/api/v1/auth/nonce")).json()["nonce"]
    text = SiweMessage(
        domain=BENCH_HOST,
        address=account.address,
        uri=f"http://{BENCH_HOST}",
        version="1",
        chain_id=31337,
        nonce=nonce,
        issued_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    ).prepare_message()
    signature = account.sign_message(encode_defunct(text=text)).signature.to_0x_hex()
    reply = await client.post(
        "/api/v1/auth/verify",
        json={"message": text, "signature": signature},
        headers={"Origin": f"http://{BENCH_HOST}"},  # the sign-in's nonce cookie was set
    )
    if reply.status_code != 200:
        raise RuntimeError(f"sign-in failed: {reply.text}")
    return str(reply.json()["token"])


async def _has_access(client: Any, course_id: int, address: str) -> bool:
    reply = await client.get(f"/api/v1/courses/{course_id}/access", params={"address": address})
    reply.raise_for_status()
    return bool(reply.json()["hasAccess"])


async def _until_proven(base: str, within: float = 30.0) -> None:
    """Wait until a replica's cache serves answers again (its /metrics gauge says 1)."""
    deadline = time.monotonic() + within
    while _metric(base, "tuition_access_cache_proven") != 1.0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base}: the access cache did not come back")
        await asyncio.sleep(0.05)


async def _revocations(
    bases: tuple[str, str],
    pairs: list[tuple[int, str]],
    fault: Callable[[], None] | None = None,
    heal: Callable[[], None] | None = None,
) -> list[float]:
    """For each pair: both replicas answer true (from their caches), `fault()`, revoke through
    replica A's admin API, then poll both until both answer false. Returns the seconds from the
    revoke's response to the second "false"."""
    import httpx

    a_base, b_base = bases
    limits = httpx.Limits(max_connections=4)
    async with (
        httpx.AsyncClient(base_url=a_base, limits=limits, timeout=10) as a,
        httpx.AsyncClient(base_url=b_base, limits=limits, timeout=10) as b,
    ):
        token = await _sign_in(a, ADMIN_KEY)
        auth = {"Authorization": f"Bearer {token}"}
        delays = []
        for course_id, address in pairs:
            for client in (a, b, a, b):  # the second round is answered from each cache
                assert await _has_access(client, course_id, address)
            if fault is not None:
                fault()
            reply = await a.post(
                "/api/v1/admin/entitlements/revoke",
                json={"address": address, "courseId": course_id, "reason": "benchmark"},
                headers=auth,
            )
            assert reply.status_code == 200, reply.text
            revoked = time.perf_counter()
            pending = {a, b}
            while pending:
                answers = await asyncio.gather(
                    *(_has_access(client, course_id, address) for client in pending)
                )
                pending = {c for c, yes in zip(list(pending), answers, strict=True) if yes}
            delays.append(time.perf_counter() - revoked)
            if heal is not None:
                heal()
                await _until_proven(b_base)
    return delays


def _spread(delays: list[float]) -> dict[str, float]:
    ordered = sorted(delays)
    return {
        "n": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def invalidation(args: argparse.Namespace, schema: str) -> dict[str, Any]:
    """Revoke through one replica, poll both: normal, listener connection cut, listener silent."""
    from eth_account import Account
    from sqlalchemy.engine import make_url

    from backend.devtools.tcp_proxy import TcpProxy

    faults = args.fault_trials
    pairs = grant_for_revocation(args.pg_url, schema, args.revocations + 2 * faults)
    url = make_url(args.pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    listen_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    common = {
        "public_url": f"http://{BENCH_HOST}",
        "admin_addresses": [Account.from_key(ADMIN_KEY).address],
        "access_cache_max_staleness": args.staleness,
    }
    a_proc, a_base = start_server(_app_args(args, schema, common))
    # Replica B listens through the proxy, so its channel can be cut or silenced.
    b_args = _app_args(args, schema, {**common, "database_listen_url": listen_url})
    b_proc, b_base = start_server(b_args)
    try:
        bases = (a_base, b_base)
        asyncio.run(_until_proven(a_base))
        asyncio.run(_until_proven(b_base))
        normal = _spread(asyncio.run(_revocations(bases, pairs[: args.revocations])))
        rest = pairs[args.revocations :]
        cut = _spread(asyncio.run(_revocations(bases, rest[:faults], proxy.cut, lambda: None)))
        silent = _spread(asyncio.run(_revocations(bases, rest[faults:], proxy.freeze, proxy.thaw)))
    finally:
        stop_server(a_proc)
        stop_server(b_proc)
        proxy.stop()
    print(
        f"revoke -> both replicas answer false, {normal['n']} revocations: "
        f"p50 {normal['p50_ms']} ms, p99 {normal['p99_ms']} ms, max {normal['max_ms']} ms",
        flush=True,
    )
    print(
        f"  listener connection cut just before each revoke ({cut['n']}): p50 {cut['p50_ms']} "
        f"ms, max {cut['max_ms']} ms",
        flush=True,
    )
    print(
        f"  listener silent (frozen) just before each revoke ({silent['n']}): p50 "
        f"{silent['p50_ms']} ms, max {silent['max_ms']} ms (bound: "
        f"{args.staleness * 1000:.0f} ms)",
        flush=True,
    )
    return {
        "staleness_bound_s": args.staleness,
        "normal": normal,
        "listener_cut": cut,
        "listener_silent": silent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[10, 32, 64], help="connection counts"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--entitlements", type=int, default=100_000)
    parser.add_argument("--pool-size", type=int, default=10, help="database pool size")
    parser.add_argument("--paths", type=int, default=20_000, help="distinct checks in the load")
    parser.add_argument("--revocations", type=int, default=100)
    parser.add_argument("--fault-trials", type=int, default=10, help="revocations per fault")
    parser.add_argument(
        "--staleness", type=float, default=1.0, help="TUITION_ACCESS_CACHE_MAX_STALENESS"
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the server without its cache at the most connections (raw stacks here)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "bench" / "api.json")
    # Internal modes: the servers run as subprocesses of this script.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.db_url, args.schema, args.port, args.pool_size, args.settings)
        return
    if args.serve_bare:
        _uvicorn(bare_app(), args.port)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (scripts/setup installs it): refusing to measure")

    import warnings

    warnings.simplefilter("ignore")
    load_before = round(os.getloadavg()[0], 2)
    print(f"load average {load_before:.2f}", flush=True)
    schema = prepare_postgres(args)
    try:
        rows = [] if args.skip_throughput else throughput(args, schema)
        invalidated = invalidation(args, schema)
    finally:
        drop_schema(args.pg_url, schema)
    summary = {
        "database": "postgresql",
        "load_generator": "wrk -t2",
        "duration_s": args.duration,
        "load_average_before": load_before,
        "load_average_after": round(os.getloadavg()[0], 2),
        "throughput": rows,
        "invalidation": invalidated,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
