"""Functions the worker tests run in `spawn`ed child processes (a light module: each child
imports it)."""

from __future__ import annotations

from eth_account import Account
from sqlalchemy.orm import sessionmaker
from web3 import HTTPProvider, Web3

from backend.core.config import get_settings
from backend.core.db import make_engine
from backend.worker.sender import TxSender


def send_many(database_url: str, rpc_url: str, key: str, prefix: str, count: int) -> list[int]:
    """Send `count` self-transfers through a fresh sender; returns their nonces."""
    engine = make_engine(database_url, immediate=True)
    try:
        account = Account.from_key(key)
        sender = TxSender(
            Web3(HTTPProvider(rpc_url)),
            account,
            sessionmaker(engine, expire_on_commit=False),
            settings=get_settings().worker,
        )
        return [sender.send(f"{prefix}:{i}", account.address, "0x").nonce for i in range(count)]
    finally:
        engine.dispose()
