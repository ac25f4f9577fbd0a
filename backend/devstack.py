"""The local stack behind `tuition up`: chain, contracts, database, Stripe stand-in and services.

Everything runs on this machine with embedded defaults: anvil from npm, SQLite, the
Stripe-compatible fake, and the Celery worker on its embedded broker. The same class starts an
isolated stack (other ports, a temporary database) for end-to-end and browser tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backend.chain.deploy import deploy_demo
from backend.chain.toolchain import anvil_path, ensure_toolchain, tool_path_env
from backend.core.config import PROJECT_ROOT
from backend.core.dev_accounts import ANVIL_MNEMONIC, DEMO_ADMIN_ADDRESS, DEMO_KEYS

# Local-development placeholders (refused in production by Settings).
STRIPE_WEBHOOK_SECRET = "whsec_local"  # noqa: S105
STRIPE_API_KEY = "sk_test_local"


# The ports `tuition up` listens on by default: never handed out for an isolated stack, a test or
# a benchmark (a developer's own stack may hold them, or take them later).
DEFAULT_PORTS = frozenset({8545, 8546, 8000, 12111})

SECOND_CHAIN_ID = 31338  # the local stack's second chain (the first is anvil's 31337)


def free_port() -> int:
    """A TCP port nobody listens on right now (never one of `DEFAULT_PORTS`)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in DEFAULT_PORTS:
            return port


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check()` until it is truthy or raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class StackConfig:
    """Where the stack listens and keeps its state."""

    rpc_port: int = 8545
    # A second local chain (chain id 31338, network "<network>-b") on this port; None: one chain.
    second_rpc_port: int | None = None
    api_port: int = 8000
    stripe_port: int = 12111
    database_url: str | None = None  # default: SQLite in var/
    state_dir: Path = PROJECT_ROOT / "var"
    network: str = "local"
    deployments_dir: Path = PROJECT_ROOT / "deployments"
    with_worker: bool = True
    with_indexer: bool = True
    quiet: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    # A block explorer per chain id, for the links the web app draws (local chains have none).
    explorer_urls: dict[int, str] = field(default_factory=dict)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def chains(self) -> list[tuple[str, int, int]]:
        """(network name, chain id, RPC port) of each local chain, the API's first."""
        found = [(self.network, 31337, self.rpc_port)]
        if self.second_rpc_port is not None:
            found.append((f"{self.network}-b", SECOND_CHAIN_ID, self.second_rpc_port))
        return found

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.stripe_port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'tuition.db'}"


class DevStack:
    """Starts and stops the whole local stack; a context manager."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.deployment: dict[str, Any] = {}
        self.deployments: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ environment

    def env(self) -> dict[str, str]:
        """The TUITION_* environment every service of this stack runs with."""
        cfg = self.config
        env = tool_path_env()
        env.update(
            {
                "TUITION_ENV": "development",
                "TUITION_DATABASE_URL": cfg.db_url,
                "TUITION_NETWORKS": json.dumps(
                    [
                        {
                            "name": name,
                            "chain_id": chain_id,
                            "rpc_url": f"http://127.0.0.1:{port}",
                            "ws_url": f"ws://127.0.0.1:{port}",
                            "chain_name": f"Anvil {chain_id}",
                            # Local chains: final at once, small reorg window.
                            "confirmations": 0,
                            "reorg_window": 64,
                            "block_time": 1,
                            "explorer_url": cfg.explorer_urls.get(chain_id),
                        }
                        for name, chain_id, port in cfg.chains
                    ]
                ),
                "TUITION_NETWORK": cfg.network,
                "TUITION_DEPLOYMENTS_DIR": str(cfg.deployments_dir),
                "TUITION_PUBLIC_URL": cfg.api_url,
                "TUITION_COOKIE_SECURE": "false",
                "TUITION_STRIPE_SECRET_KEY": STRIPE_API_KEY,
                "TUITION_STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
                "TUITION_STRIPE_API_BASE": cfg.stripe_url,
                "TUITION_OPERATOR_PRIVATE_KEY": DEMO_KEYS["operator"],
                # The demo admin wallet signs in as the platform's admin (the /admin view).
                "TUITION_ADMIN_ADDRESSES": json.dumps([DEMO_ADMIN_ADDRESS]),
                # The embedded broker's files and the receipt mails live with this stack's state.
                "TUITION_WORKER_STATE_DIR": str(cfg.state_dir),
                "TUITION_WORKER_MAIL_DIR": str(cfg.state_dir / "mail"),
            }
        )
        env.update(cfg.extra_env)
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log_dir = self.config.state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = (log_dir / f"{name}.log").open("ab")
        # A new session per child so Ctrl-C reaches us once and we stop children in order.
        proc = subprocess.Popen(  # noqa: S603 - our own commands
            args,
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    def _tuition(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "backend.cli", *args]

    # ------------------------------------------------------------------ steps

    def start_chain(self) -> None:
        """Start an anvil per local chain unless a node already answers on its RPC port."""
        for name, chain_id, port in self.config.chains:
            url = f"http://127.0.0.1:{port}"
            if self._rpc_alive(url):
                continue
            self._spawn(
                "anvil" if name == self.config.network else f"anvil-{name}",
                [
                    str(anvil_path()),
                    "--port",
                    str(port),
                    "--hardfork",
                    "cancun",
                    "--chain-id",
                    str(chain_id),
                    "--mnemonic",
                    ANVIL_MNEMONIC,
                    "--silent",
                ],
            )
            wait_until(lambda url=url: self._rpc_alive(url), 30, f"anvil ({name})")

    def _rpc_alive(self, url: str | None = None) -> bool:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        try:
            return httpx.post(url or self.config.rpc_url, json=body, timeout=1).status_code == 200
        except httpx.HTTPError:  # nothing listens yet
            return False

    def forget_old_chain(self) -> None:
        """A new anvil is a new chain: drop the local state that described the previous one.

        Otherwise the indexer would find its checkpoint on no block of this chain and halt as on
        a reorg deeper than its window. Only the embedded SQLite files are ever removed.
        """
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber"}
        body = {**request, "params": ["0x0", False]}
        genesis = " ".join(
            httpx.post(f"http://127.0.0.1:{port}", json=body, timeout=5).json()["result"]["hash"]
            for _name, _chain_id, port in self.config.chains
        )
        marker = self.config.state_dir / "chain-genesis"
        known = marker.read_text().strip() if marker.exists() else None
        if known != genesis and self.config.database_url is None:
            for name in ("tuition.db", "tuition.db-wal", "tuition.db-shm"):
                (self.config.state_dir / name).unlink(missing_ok=True)
            for broker_file in self.config.state_dir.glob("celery-*.sqlite*"):
                broker_file.unlink()
            if known is not None and not self.config.quiet:
                print("new local chain: starting from an empty local database")
        marker.write_text(genesis + "\n")

    def deploy(self) -> dict[str, Any]:
        """Deploy (or reuse) the contracts and the demo catalog on every local chain; returns
        the first chain's deployment file (the others are in `deployments`)."""
        self.deployments = {
            name: deploy_demo(
                rpc_url=f"http://127.0.0.1:{port}",
                network=name,
                deployments_dir=self.config.deployments_dir,
                chain_id=chain_id,
            )
            for name, chain_id, port in self.config.chains
        }
        self.deployment = self.deployments[self.config.network]
        return self.deployment

    def migrate(self) -> None:
        """Bring the database schema to head."""
        subprocess.run(  # noqa: S603 - our own CLI
            self._tuition("db", "upgrade"), cwd=PROJECT_ROOT, env=self.env(), check=True
        )

    def seed(self) -> None:
        """Descriptions and lessons of the demo courses (the chain has titles and prices)."""
        subprocess.run(  # noqa: S603 - our own CLI
            self._tuition("seed-demo"), cwd=PROJECT_ROOT, env=self.env(), check=True
        )

    def start_services(self) -> None:
        """Stripe stand-in, API, indexer and worker, each in its own process."""
        cfg = self.config
        self._spawn(
            "stripe",
            self._tuition(
                "stripe-fake",
                "--port",
                str(cfg.stripe_port),
                "--webhook-url",
                f"{cfg.api_url}/api/v1/webhooks/stripe",
            ),
        )
        self._spawn("api", self._tuition("api", "--port", str(cfg.api_port)))
        if cfg.with_indexer:
            # One indexer per chain, each with its own checkpoint and standby lock.
            for name, _chain_id, _port in cfg.chains:
                label = "indexer" if name == cfg.network else f"indexer-{name}"
                self._spawn(label, self._tuition("indexer", "--network", name))
        if cfg.with_worker:
            self._spawn("worker", self._tuition("worker", "--beat", "--concurrency", "2"))
        wait_until(
            lambda: httpx.get(f"{cfg.api_url}/readyz", timeout=1).status_code == 200, 60, "API"
        )
        wait_until(
            lambda: httpx.get(f"{cfg.stripe_url}/_fake/health", timeout=1).status_code == 200,
            30,
            "Stripe stand-in",
        )
        # Card prices are offered for providers Stripe can pay out: onboard the demo provider.
        subprocess.run(  # noqa: S603 - our own CLI
            self._tuition("seed-connect"),
            cwd=PROJECT_ROOT,
            env=self.env(),
            check=True,
            stdout=subprocess.DEVNULL if cfg.quiet else None,
        )

    def start(self) -> DevStack:
        """Everything, in order."""
        ensure_toolchain()
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.start_chain()
        self.forget_old_chain()
        self.deploy()
        self.migrate()
        self.seed()
        self.start_services()
        return self

    def stop(self) -> None:
        """Stop the services first and the chain last; SIGKILL whatever ignores SIGTERM."""
        for name in reversed(list(self.processes)):
            terminate(self.processes[name])
        for proc in self.processes.values():
            reap(proc, 10)
        self.processes.clear()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ reporting

    def summary(self) -> str:
        """What a developer needs to start clicking."""
        from eth_account import Account

        cfg = self.config
        contracts = self.deployment.get("contracts", {})
        lines = [
            "Tuition is up:",
            f"  web app & API   {cfg.api_url}   (docs: {cfg.api_url}/docs)",
            *(
                f"  chain (anvil)   http://127.0.0.1:{port}   chain id {chain_id} ({name})"
                for name, chain_id, port in cfg.chains
            ),
            f"  Stripe fake     {cfg.stripe_url}",
            f"  database        {cfg.db_url}",
            f"  logs            {cfg.state_dir / 'logs'}",
            "Contracts:",
        ]
        lines += [f"  {name:<18}{info['address']}" for name, info in contracts.items()]
        lines.append(f"Demo accounts (import a key into MetaMask, network {cfg.rpc_url}):")
        for role, key in DEMO_KEYS.items():
            lines.append(f"  {role:<9} {Account.from_key(key).address}  {key}")
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)

    def watch(self) -> int:
        """Block until Ctrl-C (or SIGTERM/SIGHUP) or a service dies; returns an exit code."""
        # The children run in their own sessions, so a terminal's or a supervisor's signal
        # reaches only this process: turn it into the same clean stop as Ctrl-C.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, raise_interrupt)
        try:
            while True:
                for name, proc in self.processes.items():
                    if proc.poll() is not None:
                        log = self.config.state_dir / "logs" / f"{name}.log"
                        print(f"{name} exited with {proc.returncode}; see {log}", file=sys.stderr)
                        return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0


def terminate(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Ask a service to stop as compose does: `sig` to its main process only.

    Not to its process group: Celery's pool processes die at once on SIGTERM, mid-task, while
    the main process's warm shutdown lets them finish what they run (and uvicorn finishes the
    requests in flight).
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait up to `timeout` s for a terminated service, then SIGKILL its group; any process of
    the group that outlived its leader goes too."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
