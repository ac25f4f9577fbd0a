"""The transaction sender: idempotent keys, nonces under concurrency, stuck and dropped txs."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from support.anvil import Anvil
from support.market import KEYS
from support.spawned import send_many
from support.worker import WorkerEnv

from backend.core.config import WorkerSettings
from backend.core.db import session_scope
from backend.core.errors import TxWouldRevertError
from backend.worker.models import TxStatus, WorkerTransaction, WorkerTxAttempt
from backend.worker.sender import TxSender

pytestmark = pytest.mark.chain


def make_sender(wenv: WorkerEnv, key: str = KEYS[5], **settings: float) -> TxSender:
    """A sender of `key` on the test's database and chain."""
    return TxSender(
        wenv.deployed.w3,
        Account.from_key(key),
        wenv.factory,
        settings=WorkerSettings(**settings),  # type: ignore[arg-type]
    )


def rows(wenv: WorkerEnv) -> list[WorkerTransaction]:
    with session_scope(wenv.factory) as s:
        found = s.scalars(select(WorkerTransaction).order_by(WorkerTransaction.nonce)).all()
        for row in found:
            s.expunge(row)
        return list(found)


def attempts(wenv: WorkerEnv, tx_id: int) -> list[WorkerTxAttempt]:
    with session_scope(wenv.factory) as s:
        found = s.scalars(
            select(WorkerTxAttempt)
            .where(WorkerTxAttempt.transaction_id == tx_id)
            .order_by(WorkerTxAttempt.id)
        ).all()
        for row in found:
            s.expunge(row)
        return list(found)


def self_address(sender: TxSender) -> str:
    return str(sender.address)


def test_same_key_sends_once(wenv: WorkerEnv) -> None:
    sender = make_sender(wenv)
    first = sender.send("once", self_address(sender), "0x")
    again = sender.send("once", self_address(sender), "0x")
    assert again.id == first.id and again.tx_hash == first.tx_hash
    mined = sender.wait(first, timeout=30)
    assert mined.mined and mined.block_number
    assert sender.send("once", self_address(sender), "0x").status == TxStatus.MINED
    assert len(rows(wenv)) == 1


def test_estimate_revert_uses_no_nonce(wenv: WorkerEnv) -> None:
    sender = make_sender(wenv, KEYS[6])  # not an operator: grantAccess reverts
    market = wenv.deployed.market
    data = market.encode_abi("grantAccess", args=[1, sender.address, 2, b"\x01" * 32])
    with pytest.raises(TxWouldRevertError):
        sender.send("denied", market.address, data)
    assert rows(wenv) == []
    tx = sender.send("fine", self_address(sender), "0x")
    assert tx.nonce == wenv.deployed.w3.eth.get_transaction_count(sender.address, "pending") - 1


def test_concurrent_threads_get_distinct_consecutive_nonces(wenv: WorkerEnv) -> None:
    w3 = wenv.deployed.w3
    key = KEYS[7]
    address = Account.from_key(key).address
    start = w3.eth.get_transaction_count(address, "pending")

    def worker(n: int) -> list[int]:
        sender = make_sender(wenv, key)
        return [sender.send(f"t{n}:{i}", address, "0x").nonce for i in range(5)]

    with ThreadPoolExecutor(8) as pool:
        nonces = [nonce for batch in pool.map(worker, range(8)) for nonce in batch]
    assert sorted(nonces) == list(range(start, start + 40))
    sender = make_sender(wenv, key)
    for row in rows(wenv):
        assert sender.wait(row.id, timeout=60).mined
    assert w3.eth.get_transaction_count(address, "latest") == start + 40


def test_concurrent_processes_get_distinct_consecutive_nonces(wenv: WorkerEnv) -> None:
    w3 = wenv.deployed.w3
    key = KEYS[6]
    address = Account.from_key(key).address
    start = w3.eth.get_transaction_count(address, "pending")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        batches = pool.starmap(
            send_many,
            [(wenv.database_url, wenv.deployed.anvil.url, key, f"p{n}", 6) for n in range(3)],
        )
    nonces = sorted(n for batch in batches for n in batch)
    assert nonces == list(range(start, start + 18))
    sender = make_sender(wenv, key)
    for row in rows(wenv):
        assert sender.wait(row.id, timeout=60).mined
    assert w3.eth.get_transaction_count(address, "latest") == start + 18


def test_dropped_transaction_is_rebroadcast(wenv: WorkerEnv, anvil: Anvil) -> None:
    sender = make_sender(wenv)
    with anvil.no_automine():
        tx = sender.send("dropped", self_address(sender), "0x")
        anvil.rpc("anvil_dropTransaction", tx.tx_hash)
        assert anvil.rpc("eth_getTransactionByHash", tx.tx_hash) is None
        done = sender.recover()
        assert done["rebroadcast"] == 1
        assert anvil.rpc("eth_getTransactionByHash", tx.tx_hash) is not None
        anvil.mine()
    mined = sender.wait(tx, timeout=30)
    assert mined.mined and mined.tx_hash == tx.tx_hash


def test_stuck_transaction_is_repriced_with_the_same_nonce(wenv: WorkerEnv, anvil: Anvil) -> None:
    sender = make_sender(wenv, stuck_after=0)
    with anvil.no_automine():
        tx = sender.send("stuck", self_address(sender), "0x")
        done = sender.recover()
        assert done["bumped"] == 1
        tries = attempts(wenv, tx.id)
        assert len(tries) == 2
        assert tries[0].nonce == tries[1].nonce == tx.nonce
        assert tries[1].max_fee_per_gas > tries[0].max_fee_per_gas
        assert tries[1].max_priority_fee_per_gas > tries[0].max_priority_fee_per_gas
        anvil.mine()
    mined = sender.wait(tx, timeout=30)
    assert mined.mined and mined.tx_hash == tries[1].tx_hash
    assert mined.nonce == tx.nonce


def test_stuck_and_dropped_transaction_is_recovered(wenv: WorkerEnv, anvil: Anvil) -> None:
    sender = make_sender(wenv, stuck_after=0)
    with anvil.no_automine():
        tx = sender.send("stuck-dropped", self_address(sender), "0x")
        anvil.rpc("anvil_dropTransaction", tx.tx_hash)
        sender.recover()  # re-priced, same nonce, and broadcast
        latest = attempts(wenv, tx.id)[-1]
        assert anvil.rpc("eth_getTransactionByHash", latest.tx_hash) is not None
        anvil.mine()
    assert sender.wait(tx, timeout=30).mined


def test_chain_ahead_resyncs_the_nonce(wenv: WorkerEnv) -> None:
    w3 = wenv.deployed.w3
    sender = make_sender(wenv)
    first = sender.send("before", self_address(sender), "0x")
    sender.wait(first, timeout=30)
    # The key is used outside the worker: the chain's nonce moves past the DB's counter.
    account: LocalAccount = Account.from_key(KEYS[5])
    for _ in range(2):
        nonce = w3.eth.get_transaction_count(account.address, "pending")
        signed = account.sign_transaction(
            {
                "to": account.address,
                "value": 0,
                "gas": 21000,
                "nonce": nonce,
                "chainId": 31337,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    after = sender.send("after", self_address(sender), "0x")
    assert after.nonce == first.nonce + 3
    assert sender.wait(after, timeout=30).mined


def test_nonce_used_elsewhere_is_resent_under_a_new_nonce(wenv: WorkerEnv, anvil: Anvil) -> None:
    w3 = wenv.deployed.w3
    sender = make_sender(wenv)
    account: LocalAccount = Account.from_key(KEYS[5])
    with anvil.no_automine():
        tx = sender.send("displaced", self_address(sender), "0x")
        anvil.rpc("anvil_dropTransaction", tx.tx_hash)
        # Another wallet with the same key takes the nonce.
        signed = account.sign_transaction(
            {
                "to": account.address,
                "value": 1,
                "gas": 21000,
                "nonce": tx.nonce,
                "chainId": 31337,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        w3.eth.send_raw_transaction(signed.raw_transaction)
        anvil.mine()
        done = sender.recover()
        assert done["renonced"] == 1
        anvil.mine()
    mined = sender.wait(tx, timeout=30)
    assert mined.mined and mined.nonce == tx.nonce + 1
