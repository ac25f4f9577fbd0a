#!/usr/bin/env python
"""How long from an admin's revoke to the public API reporting the certificate revoked (prints
figures; not a test).

Starts the local stack (backend/devstack.py: anvil, API, indexer, worker on its embedded broker,
SQLite) on free ports in a temporary directory, mints N certificates of a demo course with the
operator key, waits for the indexer to mirror them, signs in as the demo admin, then for each
certificate in turn: `POST /api/v1/admin/certificates/{id}/revoke` and poll
`GET /api/v1/certificates/{token_id}/verification` every 25 ms until its verdict is `revoked`.
The time between the two is the figure: the outbox relay (beat, every
TUITION_WORKER_RELAY_INTERVAL s), the worker's transaction, the block, and the chain read.
Prints p50 / p95 / max; the last line is one JSON object.

    .venv/bin/python scripts/bench_revocation.py [--n 50] [--redis-url redis://127.0.0.1:6379/5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct  # noqa: E402
from siwe import SiweMessage  # noqa: E402
from web3 import HTTPProvider, Web3  # noqa: E402

from backend.chain.artifacts import load_abi  # noqa: E402
from backend.core.dev_accounts import DEMO_KEYS  # noqa: E402
from backend.devstack import DevStack, StackConfig, free_port  # noqa: E402

POLL = 0.025


def _send(w3: Web3, key: str, fn: object) -> None:
    account = Account.from_key(key)
    tx = fn.build_transaction(  # type: ignore[attr-defined]
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )
    if receipt["status"] != 1:
        raise RuntimeError("transaction reverted")


def _sign_in(client: httpx.Client, api_url: str, key: str) -> None:
    account = Account.from_key(key)
    nonce = client.get("/api/v1/auth/nonce").json()["nonce"]
    text = SiweMessage(
        domain=api_url.removeprefix("http://"),
        address=account.address,
        uri=api_url,
        version="1",
        chain_id=31337,
        nonce=nonce,
        issued_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        statement="Sign in to Tuition to buy courses, learn and collect your certificates.",
    ).prepare_message()
    signature = account.sign_message(encode_defunct(text=text)).signature.to_0x_hex()
    reply = client.post("/api/v1/auth/verify", json={"message": text, "signature": signature})
    reply.raise_for_status()


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise TimeoutError(what)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="revocations to measure")
    parser.add_argument(
        "--redis-url", help="Redis as the worker's broker (production's shape) instead of SQLite"
    )
    args = parser.parse_args()
    extra = {"TUITION_AUTH_RATE_LIMIT": "1000000", "TUITION_DOMAIN_LINK": "false"}
    if args.redis_url:
        extra["TUITION_REDIS_URL"] = args.redis_url

    with tempfile.TemporaryDirectory(prefix="tuition-bench-revoke-") as tmp:
        state = Path(tmp)
        config = StackConfig(
            rpc_port=free_port(),
            api_port=free_port(),
            stripe_port=free_port(),
            state_dir=state,
            deployments_dir=state / "deployments",
            network="bench-revoke",
            quiet=True,
            # The poll below asks the public verification far more often than a person would.
            extra_env=extra,
        )
        stack = DevStack(config)
        try:
            stack.start()
            w3 = Web3(HTTPProvider(config.rpc_url))
            contracts = stack.deployment["contracts"]
            market = w3.eth.contract(
                address=contracts["CourseMarket"]["address"], abi=load_abi("CourseMarket")
            )
            certificate = w3.eth.contract(
                address=contracts["CourseCertificate"]["address"],
                abi=load_abi("CourseCertificate"),
            )
            operator = DEMO_KEYS["operator"]
            tokens = []
            for _ in range(args.n):
                learner = Account.create().address
                _send(w3, operator, market.functions.grantAccess(1, learner, 3, b"\x01" * 32))
                _send(w3, operator, certificate.functions.mint(learner, 1, b"\x02" * 28))
                tokens.append(int(certificate.functions.tokenIdFor(learner, 1).call()))

            origin = {"Origin": config.api_url}  # the API refuses cross-site state changes
            with httpx.Client(base_url=config.api_url, timeout=30, headers=origin) as client:
                _sign_in(client, config.api_url, DEMO_KEYS["admin"])
                ids: dict[int, int] = {}

                def mirrored() -> bool:
                    for token in tokens:
                        if token not in ids:
                            reply = client.get(f"/api/v1/admin/certificates/by-token/{token}")
                            if reply.status_code != 200:
                                return False
                            ids[token] = int(reply.json()["id"])
                    return True

                _wait(mirrored, 120, "the indexer to mirror the certificates")
                seconds = []
                for token in tokens:
                    started = time.perf_counter()
                    reply = client.post(
                        f"/api/v1/admin/certificates/{ids[token]}/revoke",
                        json={"reasonCode": 1, "note": "benchmark"},
                    )
                    reply.raise_for_status()
                    while True:
                        verdict = client.get(f"/api/v1/certificates/{token}/verification")
                        if verdict.json()["verdict"] == "revoked":
                            break
                        if time.perf_counter() - started > 60:
                            raise TimeoutError(f"certificate {token} not revoked after 60 s")
                        time.sleep(POLL)
                    seconds.append(time.perf_counter() - started)
        finally:
            stack.stop()

    ms = sorted(s * 1000 for s in seconds)
    p50 = statistics.median(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    broker = "Redis" if args.redis_url else "the embedded SQLite"
    print(f"revoke -> public API reports revoked ({len(ms)}, one at a time, {broker} broker):")
    print(f"  p50 {p50:8.0f} ms   p95 {p95:8.0f} ms   max {ms[-1]:8.0f} ms   mean "
          f"{statistics.fmean(ms):8.0f} ms")  # fmt: skip
    summary = {
        "n": len(ms),
        "broker": broker,
        "p50_ms": round(p50),
        "p95_ms": round(p95),
        "max_ms": round(ms[-1]),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
