#!/usr/bin/env python
"""Serve a hosted-RPC-like endpoint in front of a local node (see backend/devtools/rpc_proxy.py).

    .venv/bin/python scripts/rpc_proxy.py --upstream http://127.0.0.1:8545 [--port 8546]
        [--delay 0.05] [--max-block-range 10000] [--max-logs 10000] [--rate-limit 50]

Prints the calls by method every `--report` seconds; stops on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.devtools.rpc_proxy import ProxyConfig, RpcProxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the node's HTTP JSON-RPC URL")
    parser.add_argument("--port", type=int, default=0, help="where to listen (0: a free port)")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per HTTP request")
    parser.add_argument("--max-block-range", type=int, default=10_000, help="0: no cap")
    parser.add_argument("--max-logs", type=int, default=10_000, help="0: no cap")
    parser.add_argument("--rate-limit", type=float, default=0, help="calls/s (0: none)")
    parser.add_argument("--report", type=float, default=10.0, help="seconds between counts")
    args = parser.parse_args()
    config = ProxyConfig(
        delay=args.delay,
        max_block_range=args.max_block_range or None,
        max_logs=args.max_logs or None,
        rate_limit=args.rate_limit or None,
    )
    proxy = RpcProxy(args.upstream, config, port=args.port).start()
    print(f"serving {proxy.url} -> {args.upstream} ({config})", flush=True)
    try:
        while True:
            time.sleep(args.report)
            print(
                f"{proxy.http_requests} HTTP requests, {proxy.calls} calls "
                f"{dict(proxy.counts)}, {proxy.throttled} throttled, {proxy.refused} refused",
                flush=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
