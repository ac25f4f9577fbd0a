"""Test helpers: anvil processes, the log-emitter contract, JSON-RPC shortcuts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from web3 import Web3

from backend.core.dev_accounts import DEMO_KEYS
from support.anvil import Anvil

ROOT = Path(__file__).resolve().parents[2]
# anvil's default account 0 (a public test key).
ANVIL_KEY_0 = DEMO_KEYS["admin"]
EMITTER_SOURCE = ROOT / "contracts" / "test" / "IndexerLogEmitter.sol"
INTERFACES = ROOT / "contracts" / "interfaces"

_COMPILE_JS = r"""
const solc = require(process.argv[2]);
const fs = require('fs');
const path = require('path');
const root = process.argv[3];
const input = {
  language: 'Solidity',
  sources: {'contracts/test/IndexerLogEmitter.sol': {
    content: fs.readFileSync(path.join(root, 'contracts/test/IndexerLogEmitter.sol'), 'utf8')}},
  settings: {evmVersion: 'cancun', optimizer: {enabled: true, runs: 200},
             outputSelection: {'*': {'*': ['abi', 'evm.bytecode.object']}}},
};
const out = JSON.parse(solc.compile(JSON.stringify(input), {
  import: (p) => { try { return {contents: fs.readFileSync(path.join(root, p), 'utf8')}; }
                   catch (e) { return {error: String(e)}; } }}));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  console.error(errors.map((e) => e.formattedMessage).join('\n'));
  process.exit(1);
}
const c = out.contracts['contracts/test/IndexerLogEmitter.sol'].IndexerLogEmitter;
process.stdout.write(JSON.stringify({abi: c.abi, bytecode: '0x' + c.evm.bytecode.object}));
"""


def compile_emitter(cache_dir: Path) -> dict[str, Any]:
    """ABI and bytecode of IndexerLogEmitter, compiled with solcjs (cached by source hash)."""
    digest = hashlib.sha256()
    for path in (EMITTER_SOURCE, *sorted(INTERFACES.glob("*.sol"))):
        digest.update(path.read_bytes())
    cached = cache_dir / f"IndexerLogEmitter-{digest.hexdigest()[:16]}.json"
    if cached.exists():
        return dict(json.loads(cached.read_text()))
    script = cache_dir / "compile_emitter.js"
    cache_dir.mkdir(parents=True, exist_ok=True)
    script.write_text(_COMPILE_JS)
    out = subprocess.run(
        ["node", str(script), str(ROOT / "node_modules" / "solc"), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"solc failed: {out.stderr}")
    cached.write_text(out.stdout)
    return dict(json.loads(out.stdout))


class Emitter:
    """A deployed IndexerLogEmitter, driven with eth_sendTransaction from anvil's accounts."""

    def __init__(self, anvil: Anvil, artifact: dict[str, Any]) -> None:
        self.anvil = anvil
        w3 = anvil.w3
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        sender = anvil.accounts[0]
        tx_hash = factory.constructor().transact({"from": sender})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        self.address: str = receipt["contractAddress"]
        self.deploy_block: int = receipt["blockNumber"]
        self.contract = w3.eth.contract(address=self.address, abi=artifact["abi"])
        self.sender = sender

    def tx(self, fn: str, *args: Any, wait: bool = True, gas: int = 30_000_000) -> str:
        """Send a call of `fn`; returns the tx hash (waits for the receipt unless told not to)."""
        data = self.contract.encode_abi(fn, args=list(args))
        tx = {"from": self.sender, "to": self.address, "data": data, "gas": hex(gas)}
        tx_hash: str = self.anvil.rpc("eth_sendTransaction", tx)
        if wait:
            self.receipt(tx_hash)
        return tx_hash

    def raw_tx(self, fn: str, *args: Any, nonce: int | None = None, gas: int = 500_000) -> str:
        """A signed raw transaction of `fn` from anvil's account 0 (re-includable as is)."""
        from eth_account import Account

        if nonce is None:
            nonce = int(self.anvil.rpc("eth_getTransactionCount", self.sender, "pending"), 16)
        tx = {
            "to": self.address,
            "data": self.contract.encode_abi(fn, args=list(args)),
            "gas": gas,
            "gasPrice": 2 * 10**9,
            "nonce": nonce,
            "chainId": self.anvil.chain_id,
            "value": 0,
        }
        return "0x" + Account.sign_transaction(tx, ANVIL_KEY_0).raw_transaction.hex()

    def send_raw(self, raw: str, wait: bool = True) -> str:
        """Broadcast a raw transaction."""
        tx_hash: str = self.anvil.rpc("eth_sendRawTransaction", raw)
        if wait:
            self.receipt(tx_hash)
        return tx_hash

    def tx_request(self, fn: str, *args: Any, gas: int = 1_000_000) -> dict[str, Any]:
        """A transaction request object (for anvil_reorg's re-inclusion lists)."""
        data = self.contract.encode_abi(fn, args=list(args))
        return {"from": self.sender, "to": self.address, "data": data, "gas": hex(gas)}

    def receipt(self, tx_hash: str, timeout: float = 30) -> dict[str, Any]:
        """Wait for a receipt."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.anvil.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                if receipt["status"] != "0x1":
                    raise RuntimeError(f"tx {tx_hash} reverted")
                return dict(receipt)
            if time.monotonic() > deadline:
                raise TimeoutError(tx_hash)
            time.sleep(0.005)

    def send_many(
        self, calls: Sequence[tuple[str, Sequence[Any]]], *, one_block: bool = True
    ) -> list[str]:
        """Send many calls without waiting, with explicit nonces, in JSON-RPC batches.

        With `one_block`, automine is paused and the calls are mined together (as many blocks as
        gas requires). Returns the tx hashes.
        """
        node = self.anvil
        nonce = int(node.rpc("eth_getTransactionCount", self.sender, "pending"), 16)
        if one_block:
            node.rpc("evm_setAutomine", False)
        hashes: list[str] = []
        try:
            for i in range(0, len(calls), 200):
                reqs = []
                for fn, args in calls[i : i + 200]:
                    n = args[3] if fn == "purchases" else 1
                    reqs.append(
                        (
                            "eth_sendTransaction",
                            [
                                {
                                    "from": self.sender,
                                    "to": self.address,
                                    "data": self.contract.encode_abi(fn, args=list(args)),
                                    "gas": hex(60_000 + 6_000 * int(n)),
                                    "nonce": hex(nonce),
                                }
                            ],
                        )
                    )
                    nonce += 1
                hashes.extend(node.batch(reqs))
        finally:
            if one_block:
                while int(node.rpc("txpool_status")["pending"], 16):
                    node.rpc("evm_mine")
                node.rpc("evm_setAutomine", True)
        self.receipt(hashes[-1])
        return hashes


def address(n: int) -> str:
    """A deterministic checksummed test address."""
    return Web3.to_checksum_address(f"0x{n:040x}")


def write_deployment(
    path: Path,
    *,
    chain_id: int,
    deploy_block: int,
    market: str,
    certificate: str | None,
    network: str = "test",
) -> Path:
    """A deployments/<network>.json pointing the indexer at test contracts."""
    contracts: dict[str, Any] = {"CourseMarket": {"address": market}}
    if certificate:
        contracts["CourseCertificate"] = {"address": certificate}
    path.write_text(
        json.dumps(
            {
                "chainId": chain_id,
                "network": network,
                "deployBlock": deploy_block,
                "contracts": contracts,
            }
        )
    )
    return path


@contextlib.contextmanager
def running_anvil(**kwargs: Any) -> Iterator[Anvil]:
    """An anvil for the duration of a with-block."""
    node = Anvil(**kwargs)
    try:
        yield node
    finally:
        node.close()
