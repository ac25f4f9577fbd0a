#!/usr/bin/env python3
"""The fault run: the production shape under a steady load of learners while processes die.

    .venv/bin/python scripts/fault_run.py                # the full run (figures in the README)
    .venv/bin/python scripts/fault_run.py --quick        # a shorter load (about three minutes)

Starts its own PostgreSQL (initdb into a temporary directory with the Debian server's binaries,
its own port) and its own Redis (its own port, append-only file), so restarting them never
touches the machine's shared services; on them, the production shape of `scripts/prod-local`
(backend/prodlocal.py) with the demo catalog. Learners then buy on both rails (a crypto quote
paid with ETH on the chain, a card checkout paid at the Stripe stand-in), check their access,
get refunds and complete courses (certificates minted by the workers), each request through
nginx with a well-behaved client's retries (connection errors, 502/503/504/429 and any answer
carrying Retry-After, with back-off), while the script in turn: kills -9 an API replica, kills
-9 the active indexer (the standby takes over), kills -9 a worker in the middle of a mint,
restarts Redis, restarts PostgreSQL, kills -9 nginx and starts it again.

Afterwards it checks from the database, the chain and the Stripe stand-in: no lost and no
duplicated grants, orders, mints, receipts and webhook applications; every request succeeded or
got a retryable answer (never a hang, never a 500 without a retry hint). Prints the figures and
writes them to docs/bench/faults.json (`--out`). Exit 0 only when every count is zero.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from web3 import HTTPProvider, Web3  # noqa: E402

from backend.auth.service import SiweMessage  # noqa: E402
from backend.chain.artifacts import load_abi  # noqa: E402
from backend.core.dev_accounts import DEMO_KEYS  # noqa: E402
from backend.devstack import free_port, raise_interrupt, wait_until  # noqa: E402
from backend.prodlocal import ProdConfig, ProdStack  # noqa: E402

NATIVE = "0x0000000000000000000000000000000000000000"
RETRYABLE_STATUS = {429, 502, 503, 504}
FAULT_NAMES = (
    "kill -9 an API replica",
    "kill -9 the active indexer",
    "kill -9 a worker during a mint",
    "restart Redis",
    "restart PostgreSQL",
    "kill -9 nginx",
)
CHECKS = (
    "lost_orders",
    "duplicated_orders",
    "lost_grants",
    "duplicated_grants",
    "lost_revocations",
    "lost_mints",
    "duplicated_mints",
    "duplicated_purchases_onchain",
    "lost_receipts",
    "receipts_stuck_sending",
    "lost_webhook_applications",
)
REQUEST_TIMEOUT = 30.0  # a request without an answer this long is a hang


# ------------------------------------------------------------------ own PostgreSQL and Redis


class OwnPostgres:
    """A PostgreSQL cluster of the run's own (Debian's server binaries), restartable at will."""

    def __init__(self, root: Path) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            raise SystemExit(
                "fault_run: PostgreSQL server binaries not found (/usr/lib/postgresql)"
            )
        self.bin = bins[-1].parent
        self.dir = root / "pg"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/tuition"
        # initdb refuses to run as root: the cluster belongs to the postgres user then.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True)

    def start(self) -> None:
        self.dir.mkdir()
        if self.prefix:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        self._pg_ctl("start")
        with psycopg.connect(self.url.replace("/tuition", "/postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE tuition")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.dir),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            options,
            *extra,
            action,
        )

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("stop", "-m", "fast")


class OwnRedis:
    """A Redis server of the run's own, with an append-only file (as compose runs it)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=(self.dir / "log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._pong, 20, "redis")

    def _pong(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis writes its append-only file and exits
            self.proc.wait(timeout=30)


# ------------------------------------------------------------------ requests, as a client sees them


@dataclass
class Sample:
    t: float  # seconds since the load started
    what: str  # endpoint family
    outcome: str  # ok | retryable:<kind> | error:<status> | hang
    latency: float


class Recorder:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.samples: list[Sample] = []
        self.errors: list[str] = []  # what the unexpected answers said
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        with self.lock:
            self.errors.append(f"[{self.now():.1f} s] {text[:300]}")

    def add(self, what: str, outcome: str, latency: float, started: float) -> None:
        with self.lock:
            self.samples.append(Sample(started - self.t0, what, outcome, latency))


class Client:
    """One learner's HTTP client: every answer recorded; retryable ones retried with back-off."""

    def __init__(
        self, base: str, recorder: Recorder, retry_for: float, client_ip: str | None = None
    ) -> None:
        # Each learner comes from its own address (nginx passes X-Forwarded-For on, the API
        # trusts it from the balancer): per-client rate limits apply per learner, as in real use.
        ip = (
            client_ip
            or f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        )
        self.http = httpx.Client(
            base_url=base,
            timeout=REQUEST_TIMEOUT,
            headers={"Origin": base, "X-Forwarded-For": ip},
        )
        self.recorder = recorder
        self.retry_for = retry_for

    def call(
        self, method: str, path: str, what: str, *, ok: tuple[int, ...] = (200, 201), **kwargs: Any
    ) -> httpx.Response:
        deadline = time.monotonic() + self.retry_for
        delay = 0.2
        while True:
            started = time.monotonic()
            try:
                reply = self.http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                self.recorder.add(what, "hang", time.monotonic() - started, started)
            except httpx.TransportError as exc:
                kind = type(exc).__name__
                self.recorder.add(what, f"retryable:{kind}", time.monotonic() - started, started)
            else:
                latency = time.monotonic() - started
                if reply.status_code in ok:
                    self.recorder.add(what, "ok", latency, started)
                    return reply
                hinted = "retry-after" in reply.headers
                if reply.status_code in RETRYABLE_STATUS or hinted:
                    self.recorder.add(what, f"retryable:{reply.status_code}", latency, started)
                else:
                    self.recorder.add(what, f"error:{reply.status_code}", latency, started)
                    self.recorder.note(f"{method} {path} -> {reply.status_code}: {reply.text}")
                    raise RuntimeError(f"{method} {path} -> {reply.status_code}: {reply.text}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: still failing after {self.retry_for} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def sign_in(self, account: LocalAccount) -> None:
        """SIWE; a failed attempt starts again from a new nonce (nonces are single-use)."""
        deadline = time.monotonic() + self.retry_for
        while True:
            nonce = self.call("GET", "/api/v1/auth/nonce", "auth").json()
            message = SiweMessage(
                domain=nonce["domain"],
                address=account.address,
                uri=nonce["uri"],
                version="1",
                chain_id=nonce["chainId"],
                nonce=nonce["nonce"],
                issued_at=datetime.now(UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                statement="Sign in to Tuition.",
            ).prepare_message()
            signature = account.sign_message(encode_defunct(text=message)).signature.hex()
            body = {"message": message, "signature": "0x" + signature.removeprefix("0x")}
            try:
                session = self.call("POST", "/api/v1/auth/verify", "auth", json=body).json()
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                continue  # the nonce may have been spent by an attempt whose answer was lost
            self.http.headers["Authorization"] = f"Bearer {session['token']}"
            return

    def close(self) -> None:
        self.http.close()


# ------------------------------------------------------------------ the load


@dataclass
class Purchase:
    learner: str
    course_id: int
    rail: str
    order_id: str | None = None
    refund: bool = False
    certificate: bool = False
    granted: bool = False
    revoked: bool = False
    minted: bool = False
    error: str | None = None


@dataclass
class Load:
    api: str
    stripe: str
    chain: Web3
    courses: dict[str, dict[str, Any]]  # "crypto" / "card" → course
    recorder: Recorder
    retry_for: float
    provider: Client
    purchases: list[Purchase] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def on(cls, stack: ProdStack) -> Load:
        """Learners of the demo catalog on `stack`: an ETH course with lessons, a card course,
        the demo provider signed in (for refunds)."""
        from backend.chain.deploy import DEMO_COURSES

        api = stack.config.api_url
        courses = _catalog(api, len(DEMO_COURSES))
        recorder = Recorder()
        provider = Client(api, recorder, retry_for=120)
        provider.sign_in(Account.from_key(DEMO_KEYS["provider"]))
        return cls(
            api,
            stack.stripe_url,
            Web3(HTTPProvider(stack.config.rpc_url, request_kwargs={"timeout": 30})),
            {
                "crypto": next(c for c in courses if c["lessonCount"] >= 2 and _eth_price(c) > 0),
                "card": next(
                    c for c in courses if c.get("fiatPrice") and c["fiatPrice"]["amount"] != "0"
                ),
            },
            recorder,
            retry_for=120,
            provider=provider,
        )

    def learner(self, n: int) -> None:
        rail = "crypto" if n % 2 == 0 else "card"
        course = self.courses[rail]
        account: LocalAccount = Account.from_key("0x" + os.urandom(32).hex())
        self.chain.provider.make_request(  # type: ignore[arg-type]
            "anvil_setBalance", [account.address, hex(10 * 10**18)]
        )
        # Refunds on the card rail (a provider's crypto refund is a transaction from its own
        # wallet, outside what the platform's processes do).
        p = Purchase(account.address, course["id"], rail, refund=n % 6 == 1, certificate=n % 3 == 0)
        with self.lock:
            self.purchases.append(p)
        client = Client(self.api, self.recorder, self.retry_for)
        try:
            client.sign_in(account)
            if rail == "crypto":
                self._pay_crypto(client, account, course, p)
            else:
                self._pay_card(client, course, p)
            p.granted = self._wait_access(client, course, account.address, True)
            for _ in range(5):
                client.call(
                    "GET",
                    f"/api/v1/courses/{course['id']}/access",
                    "access",
                    params={"address": account.address},
                )
            if p.refund and p.granted and p.order_id:
                self.provider.call(
                    "POST",
                    f"/api/v1/orders/{p.order_id}/refund",
                    "refund",
                    ok=(200, 201, 409),
                    json={},
                )
                p.revoked = self._wait_access(client, course, account.address, False)
            elif p.certificate and p.granted:
                for lesson in range(1, course["lessonCount"] + 1):
                    client.call(
                        "POST",
                        f"/api/v1/courses/{course['id']}/lessons/{lesson}/complete",
                        "learn",
                        json={},
                    )
                p.minted = self._wait(
                    lambda: any(
                        c["status"] == "minted"
                        for c in client.call("GET", "/api/v1/me/certificates", "certs").json()
                    ),
                    180,
                )
        except Exception as exc:  # recorded: the checks count it
            p.error = f"{type(exc).__name__}: {exc}"
        finally:
            client.close()

    def _pay_crypto(
        self, client: Client, account: LocalAccount, course: dict[str, Any], p: Purchase
    ) -> None:
        reply = client.call(
            "POST",
            "/api/v1/orders/crypto",
            "quote",
            json={"courseId": course["id"], "token": NATIVE},
        ).json()
        p.order_id = reply["order"]["id"]
        tx = reply["transaction"]
        w3 = self.chain
        fields: dict[str, Any] = {
            "from": account.address,
            "to": Web3.to_checksum_address(tx["to"]),
            "data": tx["data"],
            "value": int(tx["value"]),
            "chainId": 31337,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        }
        fields["gas"] = w3.eth.estimate_gas(fields) * 12 // 10  # type: ignore[arg-type]
        base = int(w3.eth.get_block("latest")["baseFeePerGas"])
        fields |= {"maxPriorityFeePerGas": 10**9, "maxFeePerGas": base * 2 + 10**9}
        signed = account.sign_transaction(fields)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.2)
        if receipt["status"] != 1:
            raise RuntimeError("the purchase reverted")

    def _pay_card(self, client: Client, course: dict[str, Any], p: Purchase) -> None:
        checkout = client.call(
            "POST", "/api/v1/checkout/stripe", "checkout", json={"courseId": course["id"]}
        ).json()
        p.order_id = checkout["orderId"]
        with httpx.Client(base_url=self.stripe, timeout=30) as stripe:
            paid = stripe.post(f"/pay/{checkout['sessionId']}")
            if paid.status_code != 303:
                raise RuntimeError(f"the stand-in refused the payment: {paid.status_code}")

    def _wait_access(
        self, client: Client, course: dict[str, Any], address: str, want: bool
    ) -> bool:
        def check() -> bool:
            reply = client.call(
                "GET",
                f"/api/v1/courses/{course['id']}/access",
                "access",
                params={"address": address},
            )
            return bool(reply.json()["hasAccess"]) is want

        return self._wait(check, 180)

    @staticmethod
    def _wait(check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.5)
        return False


# ------------------------------------------------------------------ faults


@dataclass
class Fault:
    name: str
    started: float
    recovered: float
    detail: dict[str, Any] = field(default_factory=dict)


def run_faults(
    stack: ProdStack,
    pg: OwnPostgres,
    redis_srv: OwnRedis,
    recorder: Recorder,
    gap: float,
    stop: threading.Event,
) -> list[Fault]:
    """Each fault in turn, `gap` seconds apart; returns when all are done."""
    faults: list[Fault] = []
    cfg = stack.config

    def pause() -> bool:
        return stop.wait(gap)

    def kill9(name: str) -> None:
        os.killpg(stack.processes[name].pid, signal.SIGKILL)
        stack.processes[name].wait()

    def api_ready(port: int) -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200

    def api_replica() -> dict[str, Any]:
        kill9("api-1")
        time.sleep(2)  # compose restarts it after it is seen dead
        stack.restart("api-1")
        wait_until(lambda: api_ready(cfg.api_ports[0]), 60, "api-1 again")
        return {}

    def indexer() -> dict[str, Any]:
        active = stack.active_indexer()
        name = f"indexer-{cfg.indexer_metrics_ports.index(active) + 1}" if active else "indexer-1"
        killed = time.monotonic()
        kill9(name)
        wait_until(lambda: stack.active_indexer() not in (None, active), 120, "the standby")
        takeover = time.monotonic() - killed
        stack.restart(name)  # the new standby
        return {"killed": name, "takeover_seconds": round(takeover, 2)}

    def worker_mid_mint() -> dict[str, Any]:
        # The worker whose process runs a mint right now (the job names it), else the first.
        claim = _wait_minting(pg.url, 60)
        name = claim.split("@", 1)[0] if claim else "worker-1"
        if name not in stack.processes:
            name = "worker-1"
        kill9(name)
        time.sleep(2)
        stack.restart(name)
        return {"killed": name, "mint_in_flight": claim is not None}

    def redis_restart() -> dict[str, Any]:
        redis_srv.restart()
        return {}

    def postgres_restart() -> dict[str, Any]:
        pg.restart()
        return {}

    def nginx_kill() -> dict[str, Any]:
        kill9("nginx")
        time.sleep(1)
        stack.restart("nginx")
        wait_until(lambda: api_ready(cfg.lb_port), 30, "nginx again")
        return {}

    actions = [api_replica, indexer, worker_mid_mint, redis_restart, postgres_restart, nginx_kill]
    for name, action in zip(FAULT_NAMES, actions, strict=True):
        if pause():
            break
        started = recorder.now()
        print(f"[{started:6.1f} s] fault: {name}", flush=True)
        detail = action()
        faults.append(Fault(name, started, recorder.now(), detail))
    return faults


def _wait_minting(url: str, timeout: float) -> str | None:
    """Wait until a worker process runs a mint; the job's claim ("<node>:<pid>"), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error), psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT claimed_by FROM worker_jobs WHERE task = 'tuition.mint_certificate'"
                " AND status = 'running' AND claimed_by IS NOT NULL LIMIT 1"
            ).fetchone()
            if row:
                return str(row[0])
        time.sleep(0.05)
    return None


# ------------------------------------------------------------------ checks


def check(
    db_url: str, chain: Web3, deployment: dict[str, Any], stripe: str, purchases: list[Purchase]
) -> dict[str, Any]:
    """Lost and duplicated grants, orders, mints, receipts and webhook applications."""
    contracts = deployment["contracts"]
    market = chain.eth.contract(
        address=contracts["CourseMarket"]["address"], abi=load_abi("CourseMarket")
    )
    certificate = chain.eth.contract(
        address=contracts["CourseCertificate"]["address"], abi=load_abi("CourseCertificate")
    )
    counts: dict[str, int] = Counter({name: 0 for name in CHECKS})
    with psycopg.connect(db_url) as conn:
        q = conn.execute
        counts["duplicated_grants"] = q(
            "SELECT count(*) FROM (SELECT 1 FROM entitlements GROUP BY course_id, address"
            " HAVING count(*) > 1) d"
        ).fetchone()[0]  # type: ignore[index]
        counts["duplicated_orders"] = q(
            "SELECT count(*) FROM (SELECT 1 FROM orders WHERE status IN ('paid', 'refunded')"
            " GROUP BY buyer, course_id HAVING count(*) > 1) d"
        ).fetchone()[0]  # type: ignore[index]
        for p in purchases:
            row = (
                q("SELECT status FROM orders WHERE id = %s", (p.order_id,)).fetchone()
                if p.order_id
                else None
            )
            want = "refunded" if p.refund else "paid"
            if row is None or row[0] != want:
                counts["lost_orders"] += 1
            active = q(
                "SELECT count(*) FROM entitlements WHERE address = %s AND course_id = %s"
                " AND revoked_at IS NULL",
                (p.learner, p.course_id),
            ).fetchone()[0]  # type: ignore[index]
            if not p.refund and active != 1:
                counts["lost_grants"] += 1
            if p.refund and active != 0:
                counts["lost_revocations"] += 1
            # Card buyers get a receipt (sent, or skipped without an email address on file);
            # a crypto purchase is its own receipt on the chain.
            if p.rail == "card" and row is not None and row[0] in ("paid", "refunded"):
                receipts = q(
                    "SELECT count(*) FROM worker_sent_receipts WHERE order_ref = %s AND kind ="
                    " 'paid' AND status IN ('sent', 'skipped')",
                    (p.order_id,),
                ).fetchone()[0]  # type: ignore[index]
                if receipts != 1:
                    counts["lost_receipts"] += 1
        counts["receipts_stuck_sending"] = q(
            "SELECT count(*) FROM worker_sent_receipts WHERE status = 'sending'"
        ).fetchone()[0]  # type: ignore[index]
        minted = q("SELECT address, token_id FROM certificates WHERE status = 'minted'").fetchall()
        # What a lost mint's job looked like (for whoever has to find out why).
        stuck = q(
            "SELECT c.id, c.status, c.tx_hash, j.status, j.runs, j.enqueues, j.claimed_by,"
            " j.updated_at::text FROM certificates c LEFT JOIN worker_jobs j ON j.task ="
            " 'tuition.mint_certificate' AND (j.payload->>'certificate_id')::int = c.id"
            " WHERE c.status <> 'minted'"
        ).fetchall()
        requested = q("SELECT count(*) FROM certificates").fetchone()[0]  # type: ignore[index]
        counts["lost_mints"] = requested - len(minted)
        events = q("SELECT event_id, processed FROM stripe_events WHERE event_id IS NOT NULL")
        applied = {event_id: processed for event_id, processed in events.fetchall()}
    transfers = certificate.events.Transfer().get_logs(
        from_block=0, argument_filters={"from": NATIVE}
    )
    per_token = Counter(int(e["args"]["tokenId"]) for e in transfers)
    counts["duplicated_mints"] = sum(1 for n in per_token.values() if n > 1)
    for _address, token_id in minted:
        if per_token.get(int(token_id), 0) != 1:
            counts["lost_mints"] += 1
    purchased = market.events.CoursePurchased().get_logs(from_block=0)
    per_buy = Counter((int(e["args"]["courseId"]), e["args"]["recipient"]) for e in purchased)
    counts["duplicated_purchases_onchain"] = sum(1 for n in per_buy.values() if n > 1)
    fake = httpx.get(f"{stripe}/_fake/events", timeout=30).json()["data"]
    counts["lost_webhook_applications"] = sum(1 for e in fake if not applied.get(e["id"]))
    counts["webhook_events"] = len(fake)
    counts["failed_learners"] = sum(1 for p in purchases if p.error)
    return {**counts, "stuck_mints": [[str(v) for v in row] for row in stuck]}


def redeliver_failed_webhooks(stripe: str) -> int:
    """What Stripe does for days: deliver again every event whose deliveries all failed."""
    deliveries = httpx.get(f"{stripe}/_fake/deliveries", timeout=30).json()["data"]
    ok = {d["event_id"] for d in deliveries if d["ok"]}
    failed = {d["event_id"] for d in deliveries} - ok
    for event_id in failed:
        httpx.post(f"{stripe}/_fake/events/{event_id}/redeliver", timeout=30)
    return len(failed)


# ------------------------------------------------------------------ figures


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def figures(recorder: Recorder, faults: list[Fault], window: float) -> dict[str, Any]:
    samples = recorder.samples
    kinds = Counter(s.outcome for s in samples)
    per_fault = []
    for f in faults:

        def lat(lo: float, hi: float) -> list[float]:
            return [s.latency for s in samples if lo <= s.t < hi and s.outcome == "ok"]

        before = lat(f.started - window, f.started)
        during = lat(f.started, f.recovered)
        after = lat(f.recovered, f.recovered + window)
        bad = [
            s.t
            for s in samples
            if s.t >= f.started and s.outcome != "ok" and s.t < f.recovered + window
        ]
        per_fault.append(
            {
                "fault": f.name,
                "at_seconds": round(f.started, 1),
                "recovered_after_seconds": round(f.recovered - f.started, 2),
                "disturbed_seconds": round(max(bad) - f.started, 2) if bad else 0.0,
                "failed_or_retried_requests": len(bad),
                "p50_ms": {
                    "before": percentile(before, 0.5),
                    "during": percentile(during, 0.5),
                    "after": percentile(after, 0.5),
                },
                "p99_ms": {
                    "before": percentile(before, 0.99),
                    "during": percentile(during, 0.99),
                    "after": percentile(after, 0.99),
                },
                **f.detail,
            }
        )
    ok = [s.latency for s in samples if s.outcome == "ok"]
    return {
        "requests": len(samples),
        "served": kinds.get("ok", 0),
        "outcomes": dict(sorted(kinds.items())),
        "p50_ms": percentile(ok, 0.5),
        "p99_ms": percentile(ok, 0.99),
        "faults": per_fault,
    }


# ------------------------------------------------------------------ main


@contextlib.contextmanager
def services(root: Path) -> Iterator[tuple[OwnPostgres, OwnRedis]]:
    pg, redis_srv = OwnPostgres(root), OwnRedis(root)
    try:
        pg.start()
        redis_srv.start()
        yield pg, redis_srv
    finally:
        redis_srv.stop()
        pg.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=60, help="Purchases in all.")
    parser.add_argument("--concurrency", type=int, default=6, help="Learners at a time.")
    parser.add_argument("--gap", type=float, default=20.0, help="Seconds between faults.")
    parser.add_argument("--quick", action="store_true", help="A short run (what the test uses).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "faults.json")
    parser.add_argument("--keep", action="store_true", help="Keep the logs (temporary dir).")
    args = parser.parse_args()
    if args.quick:
        args.learners, args.concurrency, args.gap = 24, 4, 8.0

    # SIGTERM (a test's timeout, a supervisor) stops the run as Ctrl-C does: everything is
    # stopped and the temporary servers are removed.
    signal.signal(signal.SIGTERM, raise_interrupt)
    root = Path(tempfile.mkdtemp(prefix="tuition-faults-"))
    root.chmod(0o755)  # the postgres user reaches its cluster inside
    try:
        with services(root) as (pg, redis_srv):
            return run(args, root, pg, redis_srv)
    finally:
        if args.keep:
            print(f"logs kept in {root / 'prod' / 'logs'}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


def prod_config(root: Path, pg: OwnPostgres, redis_url: str) -> ProdConfig:
    """The production shape on the run's own servers, on free ports, with the demo catalog."""
    state = root / "prod"
    return ProdConfig(
        lb_port=free_port(),
        api_ports=(free_port(), free_port()),
        rpc_port=free_port(),
        stripe_port=free_port(),
        indexer_metrics_ports=(free_port(), free_port()),
        worker_metrics_ports=(free_port(), free_port()),
        postgres_url=pg.url,
        redis_url=redis_url,
        state_dir=state,
        deployments_dir=state / "deployments",
        demo=True,
        # Beat's recovery tick every 15 s instead of a minute, and a dropped retry re-published
        # 20 s after it was due instead of 60 s, so recoveries (a killed worker's jobs, the retries
        # a Redis restart made a worker drop) happen within the run.
        extra_env={"TUITION_WORKER_RESUME_INTERVAL": "15", "TUITION_WORKER_LATE_AFTER": "20"},
    )


def run(args: argparse.Namespace, root: Path, pg: OwnPostgres, redis_srv: OwnRedis) -> int:
    stack = ProdStack(prod_config(root, pg, redis_srv.url))
    try:
        stack.start()
        print(stack.summary(), flush=True)
        return load_and_check(args, stack, pg, redis_srv)
    finally:
        stack.stop()


def load_and_check(
    args: argparse.Namespace, stack: ProdStack, pg: OwnPostgres, redis_srv: OwnRedis
) -> int:
    api = stack.config.api_url
    load = Load.on(stack)
    chain, recorder, provider = load.chain, load.recorder, load.provider
    eth_course = load.courses["crypto"]
    stop = threading.Event()
    results: list[Fault] = []
    fault_thread = threading.Thread(
        target=lambda: results.extend(run_faults(stack, pg, redis_srv, recorder, args.gap, stop)),
        daemon=True,
    )
    fault_thread.start()
    # Learners arrive at a steady rate over the whole fault schedule (a fault every `gap`
    # seconds, 6 of them, a gap of quiet after the last), at most `concurrency` at a time; a few
    # readers check access and the catalog all along, so every fault meets traffic.
    span = args.gap * (len(FAULT_NAMES) + 1)
    slots = threading.Semaphore(args.concurrency)
    learner_threads: list[threading.Thread] = []

    def arrive(n: int) -> None:
        with slots:
            load.learner(n)

    def reader(k: int) -> None:
        client = Client(api, recorder, retry_for=120, client_ip=f"10.9.{k}.1")
        try:
            while not done.is_set():
                with contextlib.suppress(RuntimeError):
                    client.call("GET", "/api/v1/courses", "catalog", params={"limit": 20})
                    client.call(
                        "GET",
                        f"/api/v1/courses/{eth_course['id']}/access",
                        "access",
                        params={"address": Account.create().address},
                    )
                done.wait(0.2)
        finally:
            client.close()

    done = threading.Event()
    readers = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(2)]
    for t in readers:
        t.start()
    started = time.monotonic()
    for n in range(args.learners):
        delay = started + n * span / args.learners - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=arrive, args=(n,), daemon=True)
        t.start()
        learner_threads.append(t)
    for t in learner_threads:
        t.join()
    fault_thread.join()
    done.set()
    # Nothing the run did not kill may have died (compose would restart it, but that is no
    # excuse: a process that exits on a passing outage drops in-flight work).
    exited = sorted(name for name, proc in stack.processes.items() if proc.poll() is not None)
    for t in readers:
        t.join()
    provider.close()

    # Quiet: what Stripe would retry, then let the workers and indexers finish.
    redelivered = redeliver_failed_webhooks(stack.stripe_url)
    deadline = time.monotonic() + 180
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = check(pg.url, chain, stack.deployment, stack.stripe_url, load.purchases)
        if not any(v for k, v in counts.items() if k.startswith(("lost", "duplicated"))):
            break
        print(f"settling: {counts}", flush=True)
        time.sleep(5)
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python scripts/fault_run.py" + (" --quick" if args.quick else ""),
        "learners": args.learners,
        "concurrency": args.concurrency,
        "load_average": os.getloadavg()[0],
        "webhooks_redelivered": redelivered,
        **figures(recorder, results, window=min(args.gap, 10.0)),
        "checks": counts,
        "unexpected_exits": exited,
        "failures": [p.error for p in load.purchases if p.error][:10],
        "unexpected_answers": recorder.errors[:10],
    }
    bad_requests = sum(
        n for kind, n in report["outcomes"].items() if kind == "hang" or kind.startswith("error:")
    )
    report["bad_requests"] = bad_requests
    print(json.dumps(report, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    problems = {k: v for k, v in counts.items() if k.startswith(("lost", "duplicated", "failed"))}
    complete = len(results) == len(FAULT_NAMES)
    ok = not any(problems.values()) and not bad_requests and complete and not exited
    return 0 if ok else 1


def _catalog(api: str, expected: int) -> list[dict[str, Any]]:
    def linked() -> list[dict[str, Any]] | None:
        reply = httpx.get(f"{api}/api/v1/courses", params={"limit": 100}, timeout=10)
        items = reply.json()["items"]
        ready = [c for c in items if c["onchainId"] is not None and c["prices"]]
        return ready if len(ready) >= expected else None

    found: list[dict[str, Any]] = []
    wait_until(lambda: found.extend(linked() or []) or found, 180, "the demo catalog", 1.0)
    return found


def _eth_price(course: dict[str, Any]) -> int:
    for price in course["prices"]:
        if price["token"]["address"] == NATIVE:
            return int(price["price"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
