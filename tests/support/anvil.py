"""A private anvil node per test session or module: the npm binary, a free port, killed with
the process that started it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
from web3 import Web3

from support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


def anvil_binary() -> str:
    """The anvil executable: the npm package's, the toolchain's, then PATH."""
    for candidate in (
        ROOT / "node_modules" / ".bin" / "anvil",
        ROOT / ".tools" / "bin" / "anvil",
        *sorted((ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/**/anvil")),
    ):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("anvil")
    if not found:
        raise RuntimeError("anvil not found: run scripts/setup")
    return found


def _die_with_parent() -> None:
    # Linux: SIGKILL the node when the process that started it dies, however it dies.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Anvil:
    """A private anvil node."""

    def __init__(self, *, chain_id: int = 31337, args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.chain_id = chain_id
        self.proc = subprocess.Popen(
            [
                anvil_binary(),
                "--port",
                str(self.port),
                "--hardfork",
                "cancun",
                "--chain-id",
                str(chain_id),
                "--silent",
                "--gas-limit",
                "100000000",
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.http = httpx.Client(timeout=60, headers={"content-type": "application/json"})
        deadline = time.monotonic() + 30
        while True:
            try:
                self.rpc("eth_chainId")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.05)
        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 60}))
        self.accounts = [Web3.to_checksum_address(a) for a in self.rpc("eth_accounts")]

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; raises on error answers."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        answer = orjson.loads(self.http.post(self.url, content=orjson.dumps(body)).content)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """A JSON-RPC batch; raises on any error answer."""
        body = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        answers = orjson.loads(self.http.post(self.url, content=orjson.dumps(body)).content)
        answers.sort(key=lambda a: a["id"])
        for a in answers:
            if "error" in a:
                raise RuntimeError(str(a["error"]))
        return [a["result"] for a in answers]

    def block_number(self) -> int:
        """Current head."""
        return int(self.rpc("eth_blockNumber"), 16)

    def header(self, number: int | str = "latest") -> dict[str, Any]:
        """A block header."""
        tag = hex(number) if isinstance(number, int) else number
        return dict(self.rpc("eth_getBlockByNumber", tag, False))

    def mine(self, blocks: int = 1) -> None:
        """Mine empty blocks (with automine off, the pending transactions go in the first)."""
        self.rpc("anvil_mine", hex(blocks))

    @contextlib.contextmanager
    def no_automine(self) -> Iterator[None]:
        """Transactions wait in the mempool until `mine()` (or the block ends)."""
        self.rpc("evm_setAutomine", False)
        try:
            yield
        finally:
            self.rpc("evm_setAutomine", True)
            self.rpc("evm_mine")

    def close(self) -> None:
        """Stop the node."""
        self.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
