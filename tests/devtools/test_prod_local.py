"""scripts/prod-local: the production shape runs on this machine, serves through nginx from both
replicas with one active indexer, restarts a service that dies, and leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql
from support.alerts import rule_metrics

from backend.devstack import free_port
from backend.prodlocal import nginx_path

pytestmark = [pytest.mark.slow, pytest.mark.chain]

ROOT = Path(__file__).resolve().parents[2]
READY = re.escape("Tuition (production shape) is up")


def _need_servers() -> tuple[str, str]:
    database = os.environ.get("TUITION_TEST_DATABASE_URL", "")
    redis_url = os.environ.get("TUITION_TEST_REDIS_URL", "")
    if not database.startswith("postgresql") or not redis_url:
        pytest.skip("needs TUITION_TEST_DATABASE_URL (PostgreSQL) and TUITION_TEST_REDIS_URL")
    try:
        nginx_path()
    except RuntimeError as exc:
        pytest.fail(f"{exc}")
    return database, redis_url


@dataclass
class Running:
    proc: subprocess.Popen[str]
    lines: list[str]
    state: Path
    lb: str
    api_ports: list[int]
    indexer_ports: list[int]
    worker_ports: list[int]

    def pids(self) -> dict[str, int]:
        return dict(json.loads((self.state / "pids.json").read_text()))

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if re.search(pattern, line):
                    return line
            assert self.proc.poll() is None, "prod-local exited:\n" + "".join(self.lines[-40:])
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in:\n" + "".join(self.lines[-40:]))


def _pgids_alive(pgids: set[int]) -> set[int]:
    """Which of the process groups still have a process (zombies aside)."""
    alive = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        state, pgrp = fields[0], int(fields[2])
        if pgrp in pgids and state != "Z":
            alive.add(pgrp)
    return alive


@pytest.fixture
def prod_local(tmp_path: Path) -> Iterator[Running]:
    database, redis_url = _need_servers()
    parts = urlsplit(database)
    db_url = urlunsplit(parts._replace(path=f"/tuition_prodlocal_{uuid.uuid4().hex[:8]}"))
    api_ports = [free_port(), free_port()]
    indexer_ports = [free_port(), free_port()]
    lb_port = free_port()
    worker_ports = [free_port(), free_port()]
    state = tmp_path / "prod"
    args = [
        sys.executable,
        "-m",
        "backend.cli",
        "prod-local",
        *("--lb-port", str(lb_port)),
        *("--api-ports", ",".join(map(str, api_ports))),
        *("--rpc-port", str(free_port())),
        *("--stripe-port", str(free_port())),
        *("--indexer-metrics-ports", ",".join(map(str, indexer_ports))),
        *("--worker-metrics-ports", ",".join(map(str, worker_ports))),
        *("--database-url", db_url),
        *("--redis-url", redis_url),
        *("--state-dir", str(state)),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUITION_")}
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    running = Running(
        proc, lines, state, f"http://127.0.0.1:{lb_port}", api_ports, indexer_ports, worker_ports
    )
    try:
        running.wait_for(READY, 240)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            name = urlsplit(db_url).path.lstrip("/")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_prod_local_runs_the_production_shape_and_stops_without_leftovers(
    prod_local: Running,
) -> None:
    run = prod_local
    pids = run.pids()
    expected = {"anvil", "stripe", "api-1", "api-2", "nginx", "worker-1", "worker-2", "beat"}
    assert expected | {"indexer-1", "indexer-2"} <= set(pids)
    summary = "".join(run.lines)
    assert run.lb in summary and "(active)" in summary and "(standby)" in summary

    # Production settings: the replicas refuse what development accepts.
    env = {
        k: v
        for k, v in (line.split("=", 1) for line in _proc_environ(pids["api-1"]))
        if k.startswith("TUITION_")
    }
    assert env["TUITION_ENV"] == "production"
    assert env["TUITION_DATABASE_URL"].startswith("postgresql://")
    assert env["TUITION_STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    assert env["TUITION_STRIPE_WEBHOOK_SECRET"] != "whsec_local"

    # Through nginx, answered by both replicas (its access log names the upstream).
    with httpx.Client(base_url=run.lb, timeout=10) as client:
        assert client.get("/lb-healthz").text == "ok\n"
        for _ in range(20):
            assert client.get("/readyz").status_code == 200
        config = client.get("/api/v1/config").json()
    assert config["chainId"] == 31337 and config["contracts"]["market"]
    access = (run.state / "logs" / "nginx-access.log").read_text()
    upstreams = set(re.findall(r"upstream=127\.0\.0\.1:(\d+)", access))
    assert upstreams == {str(p) for p in run.api_ports}

    # One indexer holds the lock, the other waits.
    active = [
        port
        for port in run.indexer_ports
        if re.search(
            r"^tuition_indexer_active\{[^}]*\} 1\.0$",
            httpx.get(f"http://127.0.0.1:{port}/metrics").text,
            re.M,
        )
    ]
    assert len(active) == 1

    # Every metric the alert rules use is exported by the running services (deploy/prometheus).
    wanted = rule_metrics()
    ports = [*run.api_ports, *run.indexer_ports, *run.worker_ports]

    def missing() -> set[str]:
        exported = set()
        for port in ports:
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            exported |= set(re.findall(r"^(?:# (?:HELP|TYPE) )?(tuition_[a-z0-9_]+)", body, re.M))
        return wanted - exported

    deadline = time.monotonic() + 90  # the transaction gauges: after beat's first recovery run
    while (absent := missing()) and time.monotonic() < deadline:
        time.sleep(2)
    assert absent == set()

    # A replica that dies is started again (compose's restart policy) and serves again.
    os.killpg(pids["api-2"], signal.SIGKILL)
    run.wait_for(r"api-2 restarted", 30)
    port = run.api_ports[1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        raise AssertionError("the restarted replica never became ready")

    # A replica told to stop (SIGTERM to its main process, as compose does) while requests flow
    # through nginx: it finishes what it serves, nginx sends the rest to the other replica, and
    # no client sees an error.
    failures: list[str] = []
    served = [0]
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=run.lb, timeout=10) as client:
            while not stop.is_set():
                try:
                    answer = client.get("/api/v1/courses", params={"limit": 20})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text[:200]}")
                served[0] += 1

    clients = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for t in clients:
        t.start()
    time.sleep(1)
    before = served[0]
    os.kill(run.pids()["api-1"], signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal (exit status -15).
    run.wait_for(r"api-1 exited with", 30)
    assert "Application shutdown complete" in (run.state / "logs" / "api-1.log").read_text()
    time.sleep(1)
    stop.set()
    for t in clients:
        t.join(timeout=15)
    assert before > 0 and served[0] > before
    assert failures == []

    # SIGTERM: everything stops, nothing is left behind.
    groups = set(run.pids().values())
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=90) == 0
    assert "stopped: every process of the stack has exited" in "".join(run.lines)
    assert _pgids_alive(groups) == set()


def _proc_environ(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return [item.decode() for item in raw.split(b"\0") if b"=" in item]
