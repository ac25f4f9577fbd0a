"""The production shape on this machine (`scripts/prod-local`): what docker-compose.yml starts,
from the same settings, as local processes.

`TUITION_ENV=production` with real secrets (made for this stack and kept in its state directory,
never the repo's placeholders), the machine's PostgreSQL and Redis, migrations once, the deploy
step (`tuition deploy --no-demo`, or the demo catalog with `--demo`), two API replicas behind
nginx (Debian's package; the configuration is generated from deploy/nginx.conf), two Celery
workers and beat on Redis, two indexers (one active, one hot standby by advisory lock), anvil
as the chain (producing a block a second, like a real chain) and the Stripe stand-in.

What differs from compose, and why: nginx lists the replicas' ports instead of resolving the
compose service name; anvil stands in for the chain and the Stripe stand-in for Stripe (reached
through `TUITION_STRIPE_API_BASE`, accepted in production on a loopback address only); the
indexers wait for 2 confirmations instead of 12 so a purchase is final within seconds; the
database is recreated on every start, because the chain is new on every start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from eth_account import Account

from backend.chain.toolchain import anvil_path, ensure_toolchain, tool_path_env
from backend.core.config import PROJECT_ROOT
from backend.core.dev_accounts import ANVIL_MNEMONIC
from backend.devstack import DevStack, StackConfig, raise_interrupt, reap, terminate, wait_until

NGINX_TEMPLATE = PROJECT_ROOT / "deploy" / "nginx.conf"
CHAIN_ID = 31337


class MissingToolError(RuntimeError):
    """A program the production shape needs is not installed (the message says how to get it)."""


def nginx_path() -> str:
    """Debian's nginx binary.

    Raises:
        MissingToolError: nginx is not installed.
    """
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise MissingToolError(
            "nginx is not installed: `apt-get install -y nginx-light` (scripts/setup does it)"
        )
    return found


@dataclass
class ProdConfig(StackConfig):
    """Where the production shape listens and keeps its state."""

    network: str = "prodlocal"
    rpc_port: int = 8645
    stripe_port: int = 12211
    # The only port users reach; the replicas listen on `api_ports` (loopback only).
    lb_port: int = 8080
    api_ports: tuple[int, ...] = (8101, 8102)
    indexer_metrics_ports: tuple[int, ...] = (9112, 9113)
    # One Celery worker per port (each serves its own metrics, as each compose container does).
    worker_metrics_ports: tuple[int, ...] = (9122, 9123)
    # The machine's servers: the database is this stack's own (dropped and created on start).
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/tuition_prodlocal"
    redis_url: str = "redis://127.0.0.1:6379/0"
    demo: bool = False
    state_dir: Path = PROJECT_ROOT / "var" / "prod-local"
    deployments_dir: Path = field(default=PROJECT_ROOT / "var" / "prod-local" / "deployments")

    @property
    def api_url(self) -> str:
        """What users (and browsers) reach: the load balancer."""
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def db_url(self) -> str:
        return self.postgres_url

    @property
    def chains(self) -> list[tuple[str, int, int]]:
        return [(self.network, CHAIN_ID, self.rpc_port)]


class ProdStack(DevStack):
    """Starts and stops the production shape; a context manager like DevStack."""

    config: ProdConfig

    def __init__(self, config: ProdConfig | None = None) -> None:
        super().__init__(config or ProdConfig())
        self._secrets: dict[str, str] | None = None
        # How each process was started, to start it again (compose's `restart: unless-stopped`).
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.restarts: dict[str, int] = {}

    # ------------------------------------------------------------------ secrets and environment

    def secrets(self) -> dict[str, str]:
        """This stack's secrets: made on first start, kept (mode 0600) in its state directory."""
        if self._secrets is None:
            path = self.config.state_dir / "secrets.json"
            if path.exists():
                self._secrets = dict(json.loads(path.read_text()))
            else:
                self._secrets = {
                    "TUITION_STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(24),
                    "TUITION_STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
                    "TUITION_DEPLOYER_PRIVATE_KEY": "0x" + secrets.token_hex(32),
                    "TUITION_OPERATOR_PRIVATE_KEY": "0x" + secrets.token_hex(32),
                }
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(mode=0o600)
                path.write_text(json.dumps(self._secrets, indent=2) + "\n")
        return self._secrets

    def env(self) -> dict[str, str]:
        """The environment compose gives its services (one union: each role reads its part)."""
        cfg = self.config
        env = tool_path_env()
        # Nothing from the caller's TUITION_* may leak in (a developer's .env, a test's database).
        for key in [k for k in env if k.startswith("TUITION_")]:
            del env[key]
        env.update(
            {
                "TUITION_ENV": "production",
                "TUITION_DATABASE_URL": cfg.postgres_url,
                "TUITION_REDIS_URL": cfg.redis_url,
                "TUITION_NETWORK": cfg.network,
                "TUITION_CHAIN_ID": str(CHAIN_ID),
                "TUITION_RPC_URL": cfg.rpc_url,
                "TUITION_DEPLOYMENTS_DIR": str(cfg.deployments_dir),
                "TUITION_PUBLIC_URL": cfg.api_url,
                "TUITION_FORWARDED_ALLOW_IPS": "127.0.0.1",
                "TUITION_STRIPE_API_BASE": self.stripe_url,
                "TUITION_INDEXER_CONFIRMATIONS": "2",
                "TUITION_WORKER_STATE_DIR": str(cfg.state_dir),
                "TUITION_WORKER_MAIL_DIR": str(cfg.state_dir / "mail"),
                "TUITION_WORKER_ALIVE_FILE": str(cfg.state_dir / "beat.alive"),
                # Its own keys in a shared Redis database: other stacks and tests use it too.
                "TUITION_WORKER_REDIS_KEY_PREFIX": f"{cfg.network}:",
                **self.secrets(),
            }
        )
        env.update(cfg.extra_env)
        return env

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.config.stripe_port}"

    # ------------------------------------------------------------------ steps

    def start_chain(self) -> None:
        """A fresh anvil that mines a block every second (a chain does not wait for traffic)."""
        cfg = self.config
        if self._rpc_alive(cfg.rpc_url):
            raise RuntimeError(f"something already listens on {cfg.rpc_url}: stop it first")
        self._spawn(
            "anvil",
            [
                str(anvil_path()),
                *("--port", str(cfg.rpc_port), "--hardfork", "cancun"),
                *("--chain-id", str(CHAIN_ID), "--block-time", "1"),
                *("--mnemonic", ANVIL_MNEMONIC, "--silent"),
            ],
        )
        wait_until(lambda: self._rpc_alive(cfg.rpc_url), 30, "anvil")
        # An operator funds the platform's keys; here the chain's faucet does.
        for name in ("TUITION_DEPLOYER_PRIVATE_KEY", "TUITION_OPERATOR_PRIVATE_KEY"):
            address = Account.from_key(self.secrets()[name]).address
            self._rpc(cfg.rpc_url, "anvil_setBalance", [address, hex(1_000 * 10**18)])

    def reset_database(self) -> None:
        """Drop and create this stack's database (the chain is new, so is the data)."""
        import psycopg
        from psycopg import sql

        parts = urlsplit(self.config.postgres_url)
        name = parts.path.lstrip("/")
        admin = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def clear_queues(self) -> None:
        """Forget the previous run's broker keys (its messages are for a chain that is gone)."""
        import redis

        client = redis.Redis.from_url(self.config.redis_url)
        try:
            keys = list(client.scan_iter(match=f"{self.config.network}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    def deploy(self) -> dict[str, Any]:
        """`tuition deploy` as compose's deploy service runs it."""
        args = ["deploy"] if self.config.demo else ["deploy", "--no-demo"]
        self._run(*args)
        path = self.config.deployments_dir / f"{self.config.network}.json"
        self.deployment = json.loads(path.read_text())
        self.deployments = {self.config.network: self.deployment}
        return self.deployment

    def migrate(self) -> None:
        """`tuition db upgrade`, once, before any service starts (compose's migrate service)."""
        self._run("db", "upgrade")

    def nginx_conf(self) -> Path:
        """deploy/nginx.conf for this machine: the replicas' ports instead of compose's DNS, its
        own port, pid file, temp and log paths."""
        cfg = self.config
        root = cfg.state_dir / "nginx"
        logs = cfg.state_dir / "logs"
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        text = NGINX_TEMPLATE.read_text()
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;"
            for port in cfg.api_ports
        )
        replacements = [
            (r"\n\s*resolver [^\n]*;", ""),
            (r"\n\s*server api:8000 [^\n]*;", "\n" + servers),
            (r"listen 80;", f"listen 127.0.0.1:{cfg.lb_port};"),
            (r"access_log /dev/stdout main;", f"access_log {logs / 'nginx-access.log'} main;"),
            (r"error_log /dev/stderr warn;", f"error_log {logs / 'nginx-error.log'} warn;"),
            (r"worker_processes auto;", f"worker_processes 2;\npid {root / 'nginx.pid'};"),
            (
                r"http \{",
                "http {\n"
                + "".join(
                    f"    {sub}_temp_path {root / sub};\n"
                    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
                ),
            ),
        ]
        for pattern, replacement in replacements:
            # A literal replacement (the paths may hold backslashes re.sub would interpret).
            text, count = re.subn(pattern, _literal(replacement), text, count=1)
            if count != 1:
                raise RuntimeError(f"deploy/nginx.conf changed: {pattern!r} not found")
        path = root / "nginx.conf"
        path.write_text(text)
        return path

    def start_services(self) -> None:
        """The Stripe stand-in, the API replicas and nginx, the workers, beat and the indexers,
        then wait until every one of them answers."""
        cfg = self.config
        # The stand-in is not the product: it runs as the development tool it is, with the
        # stack's keys so the API's calls and its webhooks authenticate.
        stripe_env = {"TUITION_ENV": "development"}
        self._spawn(
            "stripe",
            self._tuition(
                "stripe-fake",
                *("--port", str(cfg.stripe_port)),
                *("--webhook-url", f"{cfg.api_url}/api/v1/webhooks/stripe"),
            ),
            env=stripe_env,
        )
        for i, port in enumerate(cfg.api_ports, start=1):
            self._spawn(f"api-{i}", self._tuition("api", "--port", str(port)))
        conf = self.nginx_conf()
        self._spawn(
            "nginx",
            [
                nginx_path(),
                *("-p", str(conf.parent), "-c", str(conf)),
                *("-e", str(cfg.state_dir / "logs" / "nginx-error.log")),
                *("-g", "daemon off;"),
            ],
        )
        for i, port in enumerate(cfg.worker_metrics_ports, start=1):
            self._spawn(
                f"worker-{i}",
                self._tuition(
                    "worker",
                    *("--concurrency", "2", "--hostname", f"worker-{i}@%h"),
                    *("--metrics-port", str(port)),
                ),
            )
        self._spawn("beat", self._tuition("beat"))
        for i, port in enumerate(cfg.indexer_metrics_ports, start=1):
            self._spawn(
                f"indexer-{i}",
                self._tuition("indexer", "--metrics-port", str(port), "--no-progress"),
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        """Every replica ready, nginx routing, the stand-in up, one indexer active."""
        cfg = self.config
        for port in cfg.api_ports:
            url = f"http://127.0.0.1:{port}/readyz"
            wait_until(lambda url=url: httpx.get(url, timeout=1).status_code == 200, timeout, url)
        wait_until(
            lambda: httpx.get(f"{cfg.api_url}/readyz", timeout=1).status_code == 200,
            timeout,
            "nginx",
        )
        wait_until(
            lambda: httpx.get(f"{self.stripe_url}/_fake/health", timeout=1).status_code == 200,
            timeout,
            "Stripe stand-in",
        )
        wait_until(lambda: self.active_indexer() is not None, timeout, "an active indexer")

    def active_indexer(self) -> int | None:
        """The metrics port of the indexer holding the lock (the other one is the standby)."""
        for port in self.config.indexer_metrics_ports:
            with contextlib.suppress(httpx.HTTPError):
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
                if re.search(r"^tuition_indexer_active(\{[^}]*\})? 1(\.0)?$", body, re.M):
                    return port
        return None

    def start(self) -> ProdStack:
        """Everything, in compose's order."""
        ensure_toolchain()
        nginx_path()  # fail before starting anything
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        (self.config.state_dir / "logs").mkdir(exist_ok=True)
        self.start_chain()
        self.reset_database()
        self.clear_queues()
        self.migrate()
        self.deploy()
        if self.config.demo:
            self._run("seed-demo")  # descriptions, lessons and card prices of the demo courses
        self.start_services()
        if self.config.demo:
            self._run("seed-connect")  # the demo provider's Stripe account (card prices shown)
        self.write_pids()
        return self

    def write_pids(self) -> Path:
        """state_dir/pids.json: name → pid of every process (each leads its own group)."""
        path = self.config.state_dir / "pids.json"
        path.write_text(json.dumps({n: p.pid for n, p in self.processes.items()}, indent=2))
        return path

    # ------------------------------------------------------------------ helpers

    def _run(self, *args: str) -> None:
        log = self.config.state_dir / "logs" / f"{args[0]}.log"
        with log.open("ab") as out:
            result = subprocess.run(  # noqa: S603 - our own CLI
                self._tuition(*args), cwd=PROJECT_ROOT, env=self.env(), stdout=out, stderr=out
            )
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"tuition {' '.join(args)} failed ({result.returncode}):\n{tail}")

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.commands[name] = (args, env or {})
        log = (self.config.state_dir / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 - our own commands
            args,
            cwd=PROJECT_ROOT,
            env={**self.env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    @staticmethod
    def _rpc(url: str, method: str, params: list[Any]) -> Any:
        reply = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        )
        body = reply.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start process `name` again as it was started (after it died or was killed)."""
        old = self.processes.get(name)
        if old is not None and old.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(old.pid, signal.SIGKILL)
            old.wait()
        args, env = self.commands[name]
        self.restarts[name] = self.restarts.get(name, 0) + 1
        proc = self._spawn(name, args, env)
        self.write_pids()
        return proc

    def watch(self) -> int:
        """Block until Ctrl-C or SIGTERM; a service that exits is started again after a second
        (compose's restart policy), except the chain, whose loss ends the stack."""
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, raise_interrupt)
        try:
            while True:
                for name, proc in list(self.processes.items()):
                    if proc.poll() is None:
                        continue
                    log = self.config.state_dir / "logs" / f"{name}.log"
                    print(f"{name} exited with {proc.returncode}; see {log}", flush=True)
                    if name == "anvil":
                        return 1
                    time.sleep(1)
                    self.restart(name)
                    print(f"{name} restarted (pid {self.processes[name].pid})", flush=True)
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0

    def stop(self) -> None:
        """Stop the load balancer first (SIGQUIT: nginx's graceful stop, as its image's
        STOPSIGNAL), then the services (SIGTERM to each main process) and the chain last; each
        gets 20 s to drain in-flight work, then its process group is killed."""
        order = [n for n in self.processes if n == "nginx"]
        order += [n for n in reversed(list(self.processes)) if n not in ("nginx", "anvil")]
        order += [n for n in self.processes if n == "anvil"]
        for name in order:
            proc = self.processes[name]
            terminate(proc, signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
            if name in ("nginx", "anvil"):
                reap(proc, 20)
        for proc in self.processes.values():
            reap(proc, 20)
        self.processes.clear()

    def summary(self) -> str:
        """Where everything listens."""
        cfg = self.config
        contracts = self.deployment.get("contracts", {})
        active = self.active_indexer()
        lines = [
            "Tuition (production shape) is up, TUITION_ENV=production:",
            f"  load balancer   {cfg.api_url}   (nginx → {len(cfg.api_ports)} API replicas)",
            *(
                f"  API replica {i}   http://127.0.0.1:{port}"
                for i, port in enumerate(cfg.api_ports, start=1)
            ),
            f"  workers         {len(cfg.worker_metrics_ports)} Celery workers + beat on"
            f" {_redacted(cfg.redis_url)}",
            *(
                f"  worker {i}        metrics http://127.0.0.1:{port}/metrics"
                for i, port in enumerate(cfg.worker_metrics_ports, start=1)
            ),
            *(
                f"  indexer {i}       metrics http://127.0.0.1:{port}/metrics"
                + (" (active)" if port == active else " (standby)")
                for i, port in enumerate(cfg.indexer_metrics_ports, start=1)
            ),
            f"  chain (anvil)   {cfg.rpc_url}   chain id {CHAIN_ID}, a block a second",
            f"  Stripe stand-in {self.stripe_url}",
            f"  database        {_redacted(cfg.postgres_url)}",
            f"  secrets         {cfg.state_dir / 'secrets.json'}",
            f"  logs            {cfg.state_dir / 'logs'}",
            f"  processes       {cfg.state_dir / 'pids.json'}",
            "Contracts:",
            *(f"  {name:<18}{info['address']}" for name, info in contracts.items()),
            "Ctrl-C (or SIGTERM) stops everything.",
        ]
        return "\n".join(lines)


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: text


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def wait_for_exit(pids: dict[str, int], timeout: float) -> list[str]:
    """Names of the process groups still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [n for n in alive if _group_alive(pids[n])]
        time.sleep(0.2)
    return alive


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
