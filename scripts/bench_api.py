#!/usr/bin/env python
"""Benchmark of the access check, the API's hot path (prints figures; not a test).

For SQLite and PostgreSQL in turn: migrate a private database (a temporary file; a private
schema dropped afterwards), bulk-load 10,000 courses and 100,000 entitlements, serve the API with
uvicorn (one worker) in a subprocess, and drive it from another process (`wrk` with a Lua script
choosing random paths when installed, else an asyncio/httpx load generator) for a fixed time:
first `/api/v1/_bench/bare` (a bare FastAPI JSON endpoint of the same app, mounted only in
benchmark mode), then `GET /api/v1/courses/{id}/access?address=...` over random existing and
missing pairs. Prints req/s and p50/p99 side by side; the last line is one JSON object.

    .venv/bin/python scripts/bench_api.py [--duration 12] [--connections 32]
        [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--skip-pg] [--skip-sqlite]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.devstack import free_port  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROVIDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@dataclass
class Result:
    """One load phase."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_us: float = 0.0  # CPU time of the API process per request


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


def serve(url: str, schema: str | None, port: int, pool_size: int) -> None:
    """Child process: the real app (benchmark endpoint mounted) under uvicorn."""
    import logging

    import uvicorn

    from backend.app import create_app
    from backend.chain.deployment import Deployment
    from backend.core.config import Settings
    from backend.core.db import Database

    logging.getLogger().setLevel(logging.WARNING)  # no per-request access log in the figures
    settings = Settings(_env_file=None, env="test", database_url=url)
    app = create_app(
        settings,
        database=Database.from_url(url, pool_size=pool_size, schema=schema),
        deployment=Deployment(),
        bench=True,
        seed=False,
    )
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


def start_server(
    url: str, schema: str | None, pool_size: int
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `serve` in a subprocess and wait until it answers."""
    import httpx

    port = free_port()
    args = [sys.executable, __file__, "--serve", "--db-url", url, "--port", str(port)]
    args += ["--pool-size", str(pool_size)]
    if schema:
        args += ["--schema", schema]
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


async def _python_load(
    base: str, paths: list[str], duration: float, connections: int
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < stop_at:
                i = (i + 1) % len(paths)
                start = time.perf_counter()
                try:
                    response = await client.get(paths[i])
                    if response.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker(n * 997) for n in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "errors": errors,
    }


def run_python_load(base: str, paths: list[str], duration: float, connections: int) -> Result:
    """Drive the server from a separate Python process (when wrk is not installed)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(paths))
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--load",
                base,
                handle.name,
                str(duration),
                str(connections),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(handle.name)
    data = json.loads(out.strip().splitlines()[-1])
    return Result(
        rps=data["requests"] / data["seconds"],
        p50_ms=data["p50"] * 1000,
        p99_ms=data["p99"] * 1000,
        requests=data["requests"],
        errors=data["errors"],
    )


def load(base: str, paths: list[str], duration: float, connections: int, pid: int) -> Result:
    """Warm up briefly, then measure for `duration` seconds."""
    runner = run_wrk if shutil.which("wrk") else run_python_load
    runner(base, paths, min(2.0, duration), connections)
    cpu_before = _cpu_seconds(pid)
    result = runner(base, paths, duration, connections)
    if result.requests:
        result.server_cpu_us = (_cpu_seconds(pid) - cpu_before) / result.requests * 1e6
    return result


# ------------------------------------------------------------------------------ main


def bench_backend(
    name: str, url: str, schema: str | None, args: argparse.Namespace
) -> dict[str, Result]:
    """Prepare, serve and measure one database backend."""
    started = time.perf_counter()
    prepare_database(url, schema, args.courses, args.entitlements)
    print(
        f"[{name}] migrated and loaded {args.courses:,} courses and {args.entitlements:,} "
        f"entitlements in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    paths = access_paths(args.courses, args.entitlements, 20_000)
    proc, base = start_server(url, schema, args.pool_size)
    try:
        import httpx

        sample = httpx.get(base + paths[0], timeout=5)
        assert sample.status_code == 200 and sample.json()["hasAccess"] is True, sample.text
        missing = httpx.get(base + paths[1], timeout=5)
        assert missing.status_code == 200 and missing.json()["hasAccess"] is False, missing.text
        bare = load(base, ["/api/v1/_bench/bare"], args.duration, args.connections, proc.pid)
        access = load(base, paths, args.duration, args.connections, proc.pid)
    finally:
        stop_server(proc)
    for label, result in (("bare", bare), ("access", access)):
        print(
            f"[{name}] {label:<6} {result.rps:9.0f} req/s   p50 {result.p50_ms:7.2f} ms   "
            f"p99 {result.p99_ms:7.2f} ms   server CPU {result.server_cpu_us:5.0f} us/req   "
            f"({result.requests:,} requests, {result.errors} errors)",
            flush=True,
        )
    print(f"[{name}] access/bare = {access.rps / bare.rps:.0%}", flush=True)
    return {"bare": bare, "access": access}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--entitlements", type=int, default=100_000)
    parser.add_argument("--pool-size", type=int, default=10, help="database pool size")
    # Internal modes (the server and the Python load generator run as subprocesses).
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.db_url, args.schema, args.port, args.pool_size)
        return
    if args.load:
        base, paths_file, duration, connections = args.load
        paths = Path(paths_file).read_text().splitlines()
        print(json.dumps(asyncio.run(_python_load(base, paths, float(duration), int(connections)))))
        return

    import warnings

    warnings.simplefilter("ignore")
    print(f"load generator: {'wrk' if shutil.which('wrk') else 'python (httpx)'}", flush=True)
    results: dict[str, dict[str, Result]] = {}
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            results["sqlite"] = bench_backend("sqlite", url, None, args)
    if not args.skip_pg:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        dsn = args.pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            results["postgresql"] = bench_backend("postgresql", args.pg_url, schema, args)
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    summary: dict[str, Any] = {}
    if "postgresql" in results:
        pg = results["postgresql"]
        summary.update(
            access_rps=round(pg["access"].rps, 1),
            bare_rps=round(pg["bare"].rps, 1),
            access_p50_ms=round(pg["access"].p50_ms, 3),
            access_p99_ms=round(pg["access"].p99_ms, 3),
            bare_p50_ms=round(pg["bare"].p50_ms, 3),
            bare_p99_ms=round(pg["bare"].p99_ms, 3),
            access_over_bare=round(pg["access"].rps / pg["bare"].rps, 3),
            access_server_cpu_us=round(pg["access"].server_cpu_us, 1),
            bare_server_cpu_us=round(pg["bare"].server_cpu_us, 1),
        )
    if "sqlite" in results:
        lite = results["sqlite"]
        summary.update(
            access_rps_sqlite=round(lite["access"].rps, 1),
            bare_rps_sqlite=round(lite["bare"].rps, 1),
            access_p50_ms_sqlite=round(lite["access"].p50_ms, 3),
            access_p99_ms_sqlite=round(lite["access"].p99_ms, 3),
        )
    summary.update(
        duration_s=args.duration,
        connections=args.connections,
        load_generator="wrk" if shutil.which("wrk") else "python",
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
