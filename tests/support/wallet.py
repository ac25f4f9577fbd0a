"""A test EIP-1193 wallet for browser tests.

The page gets a small provider object (injected with `add_init_script` before any page script,
announced through EIP-6963 and also set as `window.ethereum`). Every `request()` goes to Python
through one Playwright binding: signing (personal_sign, eth_signTypedData_v4, eth_sendTransaction)
happens here with eth-account and a test key; everything else is forwarded to the test anvil.
So the front end runs unchanged, exactly as with a browser extension.

Tests steer it: `wallet.reject_next("personal_sign")` makes the next such request fail with the
EIP-1193 code 4001 (user rejected), `wallet.chain_id = 1` puts it on another network. Like a real
wallet it talks to the node of the chain it is on (`rpc_urls`: chain id → node), knows some chains
(`known_chains`: switching to another answers 4902 until the page adds it) and signs transactions
for the chain it is on.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

USER_REJECTED = 4001
UNRECOGNIZED_CHAIN = 4902

WALLET_NAME = "Tuition Test Wallet"
WALLET_RDNS = "dev.tuition.testwallet"

# Runs in the page before its own scripts. Keep it dependency-free ES2020.
PROVIDER_JS = r"""
(() => {
  if (window.__tuitionTestWalletInstalled) return;
  window.__tuitionTestWalletInstalled = true;
  const listeners = new Map();
  const emit = (event, ...args) => {
    for (const fn of [...(listeners.get(event) || [])]) {
      try { fn(...args); } catch (e) { console.error(e); }
    }
  };
  const provider = {
    isTuitionTestWallet: true,
    async request(args) {
      if (!args || typeof args.method !== "string") {
        const e = new Error("invalid request"); e.code = -32600; throw e;
      }
      const params = args.params === undefined ? [] : args.params;
      const reply = await window.__tuitionWallet(args.method, JSON.stringify(params));
      const res = JSON.parse(reply);
      for (const [event, payload] of res.events || []) emit(event, payload);
      if (res.error) {
        const e = new Error(res.error.message);
        e.code = res.error.code;
        if (res.error.data !== undefined) e.data = res.error.data;
        throw e;
      }
      return res.result;
    },
    on(event, fn) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(fn);
      return provider;
    },
    removeListener(event, fn) {
      listeners.get(event)?.delete(fn);
      return provider;
    },
  };
  window.__tuitionWalletEmit = emit;
  const info = Object.freeze({
    uuid: "6f1c3f3e-2b2a-4c53-9d2e-7a1b0c9d8e7f",
    name: "__NAME__",
    icon: "__ICON__",
    rdns: "__RDNS__",
  });
  const detail = Object.freeze({ info, provider });
  const announce = () =>
    window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
  window.ethereum = provider;
})();
"""
ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="8" fill="#2a9d8f"/>'
    '<path d="M8 16l5 5 11-11" stroke="#fff" stroke-width="3" fill="none"/></svg>'
)
ICON = "data:image/svg+xml;base64," + base64.b64encode(ICON_SVG.encode()).decode()
PROVIDER_JS = (
    PROVIDER_JS.replace("__NAME__", WALLET_NAME)
    .replace("__RDNS__", WALLET_RDNS)
    .replace("__ICON__", ICON)
)


class RpcError(Exception):
    """An EIP-1193 / JSON-RPC error to hand back to the page."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


@dataclass
class TestWallet:
    """One account's wallet, talking to the node at `rpc_url`."""

    __test__ = False  # not a pytest class

    rpc_url: str
    private_key: str
    chain_id: int = 31337  # the network the wallet is on now
    node_chain_id: int = 31337  # the chain behind rpc_url
    # Other chains' nodes (chain id → RPC URL); rpc_url serves node_chain_id.
    rpc_urls: dict[int, str] = field(default_factory=dict)
    # Chains the wallet can switch to without adding them (default: 1 and every node's chain).
    known_chains: set[int] = field(default_factory=set)
    added_chains: list[dict[str, Any]] = field(default_factory=list)
    connected: bool = False
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _reject: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.account = Account.from_key(self.private_key)
        self._http = httpx.Client(timeout=30)
        self.rpc_urls = {self.node_chain_id: self.rpc_url, **self.rpc_urls}
        if not self.known_chains:
            self.known_chains = {1, *self.rpc_urls}

    @property
    def address(self) -> str:
        return str(self.account.address)

    # ---------------------------------------------------------------- test controls

    def reject_next(self, method: str, times: int = 1) -> None:
        """Answer the next `times` requests of `method` with 4001 (the user clicked Reject)."""
        self._reject[method] = self._reject.get(method, 0) + times

    def methods_called(self) -> list[str]:
        return [method for method, _ in self.calls]

    # ---------------------------------------------------------------- Playwright binding

    def binding(self, _source: Any, method: str, params_json: str) -> str:
        """The function exposed to the page; always answers a JSON envelope."""
        params = json.loads(params_json) if params_json else []
        events: list[list[Any]] = []
        try:
            result = self.handle(method, params, events)
            return json.dumps({"result": result, "events": events})
        except RpcError as err:
            error: dict[str, Any] = {"code": err.code, "message": err.message}
            if err.data is not None:
                error["data"] = err.data
            return json.dumps({"error": error, "events": events})

    def install(self, context: Any) -> None:
        """Expose the binding and the provider script on a Playwright BrowserContext."""
        context.expose_binding("__tuitionWallet", self.binding)
        context.add_init_script(PROVIDER_JS)

    # ---------------------------------------------------------------- EIP-1193

    def handle(self, method: str, params: Any, events: list[list[Any]]) -> Any:
        with self._lock:
            self.calls.append((method, params))
            if self._reject.get(method):
                self._reject[method] -= 1
                raise RpcError(USER_REJECTED, "User rejected the request.")
        if method == "eth_requestAccounts":
            self.connected = True
            return [self.address]
        if method == "eth_accounts":
            return [self.address] if self.connected else []
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "net_version":
            return str(self.chain_id)
        if method == "wallet_switchEthereumChain":
            target = int(params[0]["chainId"], 16)
            if target not in self.known_chains:
                raise RpcError(UNRECOGNIZED_CHAIN, f"Unrecognized chain ID {hex(target)}.")
            self._switch(target, events)
            return None
        if method == "wallet_addEthereumChain":
            target = int(params[0]["chainId"], 16)
            if not params[0].get("rpcUrls") or not params[0].get("nativeCurrency"):
                raise RpcError(-32602, "wallet_addEthereumChain needs rpcUrls and nativeCurrency.")
            self.added_chains.append(params[0])
            self.known_chains.add(target)
            self._switch(target, events)
            return None
        if method in ("wallet_requestPermissions", "wallet_getPermissions"):
            return [{"parentCapability": "eth_accounts"}]
        if not self.connected and method in (
            "personal_sign",
            "eth_signTypedData_v4",
            "eth_sendTransaction",
        ):
            raise RpcError(4100, "The wallet is not connected to this site.")
        if method == "personal_sign":
            return self._personal_sign(params)
        if method == "eth_signTypedData_v4":
            return self._sign_typed_data(params)
        if method == "eth_sendTransaction":
            return self._send_transaction(params[0])
        if method in ("eth_sign", "eth_signTransaction", "eth_signTypedData"):
            raise RpcError(4200, f"{method} is not supported by the test wallet.")
        return self.rpc(method, params)

    def _switch(self, target: int, events: list[list[Any]]) -> None:
        if target != self.chain_id:
            self.chain_id = target
            events.append(["chainChanged", hex(target)])

    def _check_from(self, address: str) -> None:
        if address.lower() != self.address.lower():
            raise RpcError(4100, f"The wallet does not hold {address}.")

    def _personal_sign(self, params: list[Any]) -> str:
        data, address = params[0], params[1]
        if isinstance(data, str) and data.startswith("0x") and len(data) > 2 and data != address:
            message = encode_defunct(hexstr=data)
        else:
            message = encode_defunct(text=str(data))
        self._check_from(address)
        signed = self.account.sign_message(message)
        return "0x" + signed.signature.hex().removeprefix("0x")

    def _sign_typed_data(self, params: list[Any]) -> str:
        address, payload = params[0], params[1]
        self._check_from(address)
        typed = json.loads(payload) if isinstance(payload, str) else payload
        domain_chain = typed.get("domain", {}).get("chainId")
        if domain_chain is not None and int(str(domain_chain), 0) != self.chain_id:
            raise RpcError(-32000, "Typed data is for another chain than the active one.")
        signable = encode_typed_data(full_message=typed)
        signed = self.account.sign_message(signable)
        return "0x" + signed.signature.hex().removeprefix("0x")

    def _send_transaction(self, tx: dict[str, Any]) -> str:
        self._check_from(tx.get("from", self.address))
        if tx.get("chainId") is not None and int(tx["chainId"], 16) != self.chain_id:
            # What MetaMask answers when a dapp sends for another chain than the active one.
            raise RpcError(
                -32602, f"Invalid chainId {tx['chainId']}: the wallet is on {self.chain_id}."
            )
        request: dict[str, Any] = {
            "from": self.address,
            "to": tx.get("to"),
            "data": tx.get("data") or tx.get("input") or "0x",
            "value": tx.get("value") or "0x0",
        }
        if tx.get("gas"):
            gas = int(tx["gas"], 16)
        else:
            gas = int(self.rpc("eth_estimateGas", [request]), 16) * 12 // 10 + 10_000
        nonce = int(self.rpc("eth_getTransactionCount", [self.address, "pending"]), 16)
        base = int(self.rpc("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
        tip = 10**9
        signed = self.account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": request["to"],
                "data": request["data"],
                "value": int(request["value"], 16),
                "gas": gas,
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": base * 2 + tip,
            }
        )
        raw = "0x" + signed.raw_transaction.hex().removeprefix("0x")
        return str(self.rpc("eth_sendRawTransaction", [raw]))

    # ---------------------------------------------------------------- node

    def rpc(self, method: str, params: Any) -> Any:
        """Forward to the node of the chain the wallet is on."""
        url = self.rpc_urls.get(self.chain_id)
        if url is None:
            raise RpcError(-32603, f"The test wallet has no node for chain {self.chain_id}.")
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply = self._http.post(url, json=body).json()
        if "error" in reply:
            err = reply["error"]
            raise RpcError(int(err.get("code", -32603)), str(err.get("message")), err.get("data"))
        return reply["result"]

    def close(self) -> None:
        self._http.close()
