"""Reorgs made with anvil_reorg / anvil_rollback: undo orphaned effects, keep re-included ones."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from sqlalchemy import select
from support.anvil import Anvil
from support.emitter import Emitter, address, running_anvil, write_deployment
from support.indexer import (
    Runner,
    active_entitlements,
    applied_count,
    backend_sink,
    course_id_of,
    duplicate_keys,
    entitlements,
    make_indexer,
    orders,
)

from backend.core.config import IndexerSettings, Settings
from backend.orders.models import OrderStatus
from indexer import metrics
from indexer.engine import ReorgTooDeepError
from indexer.models import IndexerAppliedLog, IndexerCheckpoint, IndexerReorg
from indexer.runner import EXIT_HALTED, run

ZERO = "0x" + "00" * 20
NOREF = "0x" + "00" * 32
PROVIDER = address(0xA11CE)
A, B, C = address(0xA), address(0xB), address(0xC)


def setup_chain(anvil: Anvil, emitter: Emitter, depth: int) -> dict[str, str]:
    """Course 1 deep in the chain, then purchases for C, B, A in one block at depth `depth`."""
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Reorg course")
    anvil.mine(depth + 2)
    return setup_purchases(anvil, emitter, depth, course=1)


def fingerprint(db) -> tuple:
    """What must be identical to a fresh index of the same chain."""
    with db.sessions() as s:
        logs = sorted(
            (r.block_hash, r.tx_hash, r.log_index, r.event)
            for r in s.scalars(select(IndexerAppliedLog))
        )
    paid = sorted(
        (o.tx_hash, o.log_index, o.block_hash, o.recipient)
        for o in orders(db)
        if o.status == OrderStatus.PAID
    )
    return logs, paid, active_entitlements(db)


@pytest.mark.parametrize("depth", [1, 2, 5, 30, 64])
def test_reorg_undoes_orphans_and_keeps_reincluded(db_factory, anvil, emitter, depth, rpc_url):
    db = db_factory()
    raws = setup_chain(anvil, emitter, depth)
    ix = make_indexer(
        db,
        anvil,
        [emitter.address],
        emitter.deploy_block,
        sink=backend_sink(anvil.chain_id),
        reorg_window=64,
        rpc_url=rpc_url,
    )
    ix.catch_up()
    course = course_id_of(db, 1)
    assert active_entitlements(db) == {(course, C): 1, (course, A): 1, (course, B): 1}

    # New chain: C re-included at the same position (same log index), B in the next block (at
    # another log index) or, at depth 1, at its old index in the new block; A (last nonce)
    # dropped.
    anvil.rpc("anvil_reorg", depth, [[raws[C], 0], [raws[B], min(1, depth - 1)]])
    ix.catch_up()

    assert ix.reorgs == 1
    assert active_entitlements(db) == {(course, C): 1, (course, B): 1}
    revoked = [e for e in entitlements(db) if e.revoked_at is not None]
    assert [e.address for e in revoked] == [A]
    assert "reorganized away" in revoked[0].revoke_reason
    by_recipient = {o.recipient: o for o in orders(db)}
    assert by_recipient[A].status == OrderStatus.REVERTED
    assert by_recipient[B].status == by_recipient[C].status == OrderStatus.PAID
    assert len(orders(db)) == 3  # re-included purchases kept their orders
    for r in (B, C):  # and their orders moved to the new blocks
        receipt = anvil.rpc("eth_getTransactionReceipt", by_recipient[r].tx_hash)
        assert by_recipient[r].block_hash == receipt["blockHash"]
    assert duplicate_keys(db) == 0
    with db.sessions() as s:
        [reorg] = s.scalars(select(IndexerReorg)).all()
        assert reorg.kind == "reorg" and reorg.depth == depth and reorg.orphaned_logs == 3

    # Nothing wrong remains: same state as indexing the new chain from scratch.
    fresh = db_factory()
    make_indexer(
        fresh,
        anvil,
        [emitter.address],
        emitter.deploy_block,
        sink=backend_sink(anvil.chain_id),
        reorg_window=64,
        rpc_url=rpc_url,
    ).catch_up()
    assert fingerprint(db) == fingerprint(fresh)


def test_live_reorg_over_websocket(db, anvil, emitter):
    raws = setup_chain(anvil, emitter, 3)
    ix = make_indexer(
        db,
        anvil,
        [emitter.address],
        emitter.deploy_block,
        sink=backend_sink(anvil.chain_id),
        ws=True,
    )
    with Runner(ix) as run_:
        run_.wait_block(anvil.block_number())
        anvil.rpc("anvil_reorg", 3, [[raws[C], 1], [raws[B], 2]])
        run_.wait_for(lambda: ix.reorgs == 1)
        anvil.mine(1)
        run_.wait_block(anvil.block_number())
    course = course_id_of(db, 1)
    assert active_entitlements(db) == {(course, C): 1, (course, B): 1}


def test_rollback_then_different_chain(db, anvil, emitter):
    """evm_snapshot/evm_revert and anvil_rollback: the chain gets shorter, then grows anew."""
    emitter.tx("courseCreated", 1, PROVIDER, 0, "Reorg course")
    snap = anvil.rpc("evm_snapshot")
    emitter.tx("purchased", 1, A, A, ZERO, 1, 0, NOREF)
    emitter.tx("purchased", 1, B, B, ZERO, 1, 0, NOREF)
    ix = make_indexer(
        db, anvil, [emitter.address], emitter.deploy_block, sink=backend_sink(anvil.chain_id)
    )
    ix.catch_up()
    assert len(active_entitlements(db)) == 2
    anvil.rpc("anvil_rollback", 1)  # B's block disappears
    ix.catch_up()
    course = course_id_of(db, 1)
    assert active_entitlements(db) == {(course, A): 1}
    anvil.rpc("evm_revert", snap)  # back before both purchases; then another chain
    emitter.tx("purchased", 1, C, C, ZERO, 1, 0, NOREF)
    anvil.mine(2)
    ix.catch_up()
    assert active_entitlements(db) == {(course, C): 1}
    assert applied_count(db, "CoursePurchased") == 1


def test_reorg_deeper_than_window_halts(db, anvil, emitter):
    setup_chain(anvil, emitter, 10)
    ix = make_indexer(
        db,
        anvil,
        [emitter.address],
        emitter.deploy_block,
        sink=backend_sink(anvil.chain_id),
        reorg_window=8,
    )
    ix.catch_up()
    before = fingerprint(db)
    cp = ix.cp.number
    anvil.rpc("anvil_reorg", 10, [])
    with pytest.raises(ReorgTooDeepError):
        ix.catch_up()
    assert fingerprint(db) == before  # nothing guessed, nothing half-done
    with db.sessions() as s:
        [alert] = s.scalars(select(IndexerReorg)).all()
        assert alert.kind == "too_deep" and not alert.resolved
        checkpoint = s.scalars(select(IndexerCheckpoint)).one()
        assert checkpoint.block_number == cp and "deeper than" in checkpoint.halted_reason
    assert metrics.HALTED.labels(str(anvil.chain_id))._value.get() == 1


def test_runner_exits_non_zero_on_deep_reorg(db, anvil, emitter, tmp_path, caplog):
    setup_chain(anvil, emitter, 6)
    deployment = write_deployment(
        tmp_path / "test.json",
        chain_id=anvil.chain_id,
        deploy_block=emitter.deploy_block,
        market=emitter.address,
        certificate=None,
    )
    settings = Settings(
        database_url=db.url,
        rpc_url=anvil.url,
        ws_url=anvil.ws_url,
        chain_id=anvil.chain_id,
        network="test",
    )
    ixs = IndexerSettings(
        reorg_window=4, deployment_file=deployment, poll_interval=0.02, progress=False
    )
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run(settings, ixs, stop=stop, install_signals=False))
    )
    with caplog.at_level(logging.CRITICAL, logger="indexer"):
        thread.start()
        try:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 20 and applied_count(db) < 4:
                time.sleep(0.02)
            assert applied_count(db) == 4
            anvil.rpc("anvil_reorg", 6, [])
            thread.join(timeout=20)
        finally:
            stop.set()
            thread.join(timeout=20)
    assert result == [EXIT_HALTED]
    assert any("INDEXER HALTED" in r.message for r in caplog.records)


def test_reorg_on_one_chain_leaves_the_other_alone(db, emitter_artifact):
    """Ponder #1335: everything is keyed by chain id; a reorg on B never touches A's rows."""
    with running_anvil(chain_id=31337) as one, running_anvil(chain_id=31338) as two:
        em1, em2 = Emitter(one, emitter_artifact), Emitter(two, emitter_artifact)
        em1.tx("courseCreated", 1, PROVIDER, 0, "Chain one course")
        em2.tx("courseCreated", 2, PROVIDER, 0, "Chain two course")
        em1.tx("purchased", 1, A, A, ZERO, 1, 0, NOREF)
        raws = setup_purchases(two, em2, 2, course=2)
        ix1 = make_indexer(
            db, one, [em1.address], em1.deploy_block, sink=backend_sink(one.chain_id)
        )
        ix2 = make_indexer(
            db, two, [em2.address], em2.deploy_block, sink=backend_sink(two.chain_id)
        )
        ix1.catch_up()
        ix2.catch_up()
        c1, c2 = course_id_of(db, 1, one.chain_id), course_id_of(db, 2, two.chain_id)
        assert active_entitlements(db) == {(c1, A): 1, (c2, C): 1, (c2, A): 1, (c2, B): 1}
        one_logs = applied_count(db, chain_id=one.chain_id)
        two.rpc("anvil_reorg", 2, [[raws[C], 0], [raws[B], 1]])
        ix2.catch_up()
        ix1.catch_up()
        assert active_entitlements(db) == {(c1, A): 1, (c2, C): 1, (c2, B): 1}
        assert applied_count(db, chain_id=one.chain_id) == one_logs
        assert ix1.reorgs == 0 and ix2.reorgs == 1


def setup_purchases(anvil: Anvil, emitter: Emitter, depth: int, course: int) -> dict[str, str]:
    """Purchases of `course` for C, B, A (nonce order) in one block at depth `depth`."""
    nonce = int(anvil.rpc("eth_getTransactionCount", emitter.sender, "pending"), 16)
    raws = {
        r: emitter.raw_tx("purchased", course, r, r, ZERO, 1000, 10, NOREF, nonce=nonce + i)
        for i, r in enumerate((C, B, A))
    }
    anvil.rpc("evm_setAutomine", False)
    hashes = [anvil.rpc("eth_sendRawTransaction", raw) for raw in raws.values()]
    anvil.rpc("evm_mine")
    anvil.rpc("evm_setAutomine", True)
    anvil.mine(depth - 1)
    for h in hashes:
        emitter.receipt(h)
    return raws
