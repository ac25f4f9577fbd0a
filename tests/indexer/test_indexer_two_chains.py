"""Two chains, one database: the SAME on-chain course id on both, each chain's indexer on its own.

Two real anvils (chain ids 31337 and 31338) with the emitter deployed by the same account, so the
contract addresses are equal too: only the chain id tells the chains' facts apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from support.anvil import Anvil
from support.emitter import Emitter, address
from support.indexer import (
    active_entitlements,
    applied_count,
    backend_sink,
    course_id_of,
    make_indexer,
    orders,
)

from backend.catalog.models import Course
from backend.catalog.service import prices_for
from backend.certificates.models import Certificate, CertificateStatus
from backend.orders.models import OrderStatus
from backend.provider.models import ProviderProfile
from indexer.models import IndexerBlock, IndexerCheckpoint

ZERO = "0x" + "00" * 20
NOREF = "0x" + "00" * 32
PROVIDER = address(0xA11CE)
LEARNER = address(0xB0B)
A, B = 31337, 31338
COURSE = 7  # the on-chain id, on both chains


@pytest.fixture
def chains(emitter_artifact: dict[str, Any]) -> Iterator[dict[int, tuple[Anvil, Emitter]]]:
    nodes = {A: Anvil(chain_id=A), B: Anvil(chain_id=B)}
    try:
        yield {cid: (node, Emitter(node, emitter_artifact)) for cid, node in nodes.items()}
    finally:
        for node in nodes.values():
            node.close()


def _indexer(db: Any, node: Anvil, emitter: Emitter) -> Any:
    return make_indexer(
        db,
        node,
        [emitter.address],
        emitter.deploy_block,
        sink=backend_sink(node.chain_id),
        reorg_window=16,
    )


def _state_of(db: Any, chain_id: int) -> tuple[Any, ...]:
    """Everything an indexer of `chain_id` owns: checkpoint, block window, applied logs."""
    with db.sessions() as s:
        checkpoint = s.execute(
            select(IndexerCheckpoint.block_number, IndexerCheckpoint.block_hash).where(
                IndexerCheckpoint.chain_id == chain_id
            )
        ).all()
        blocks = s.scalar(
            select(func.count()).select_from(IndexerBlock).where(IndexerBlock.chain_id == chain_id)
        )
    return tuple(checkpoint), blocks, applied_count(db, chain_id=chain_id)


def _orders_by_chain(db: Any) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for order in orders(db):
        found.setdefault(order.chain_id, []).append(order.status)
    return found


def test_same_course_id_on_two_chains_one_entitlement_and_each_chain_undoes_only_its_own(
    db: Any, chains: dict[int, tuple[Anvil, Emitter]]
) -> None:
    (node_a, em_a), (node_b, em_b) = chains[A], chains[B]
    assert em_a.address == em_b.address  # only the chain id tells them apart
    for em, price in ((em_a, 100), (em_b, 300)):
        em.tx("courseCreated", COURSE, PROVIDER, 3600, "Rust on two chains")
        em.tx("priceSet", COURSE, ZERO, price, True)
    ix_a, ix_b = _indexer(db, node_a, em_a), _indexer(db, node_b, em_b)
    ix_a.catch_up()
    ix_b.catch_up()

    # One course, registered on both chains with the same id, priced per chain.
    course = course_id_of(db, COURSE, A)
    assert course_id_of(db, COURSE, B) == course
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Course)) == 1
        assert [p.price for p in prices_for(s, [course], A)[course]] == [100]
        assert [p.price for p in prices_for(s, [course], B)[course]] == [300]

    # A purchase on each chain (same learner): two orders, one entitlement.
    before_b = node_b.block_number()
    em_a.tx("purchased", COURSE, LEARNER, LEARNER, ZERO, 100, 1, NOREF)
    em_b.tx("purchased", COURSE, LEARNER, LEARNER, ZERO, 300, 3, NOREF)
    ix_a.catch_up()
    ix_b.catch_up()
    assert _orders_by_chain(db) == {A: [OrderStatus.PAID], B: [OrderStatus.PAID]}
    assert active_entitlements(db) == {(course, LEARNER): 1}

    # A reorg on chain B removes B's purchase: only B's rows change, access stays (A paid).
    a_before = _state_of(db, A)
    node_b.rpc("anvil_reorg", node_b.block_number() - before_b, [])
    ix_b.catch_up()
    assert ix_b.reorgs == 1 and ix_a.reorgs == 0
    assert _orders_by_chain(db) == {A: [OrderStatus.PAID], B: [OrderStatus.REVERTED]}
    assert active_entitlements(db) == {(course, LEARNER): 1}
    assert _state_of(db, A) == a_before, "chain B's reorg touched chain A's indexer state"

    # Bought again on B, then refunded on A: A's refund ends A's purchase only.
    em_b.tx("purchased", COURSE, LEARNER, LEARNER, ZERO, 300, 3, NOREF)
    ix_b.catch_up()
    b_before = _state_of(db, B)
    em_a.tx("refunded", COURSE, LEARNER, LEARNER, ZERO, 100, PROVIDER)
    ix_a.catch_up()
    assert _state_of(db, B) == b_before, "chain A's indexer touched chain B's indexer state"
    statuses = _orders_by_chain(db)
    assert statuses[A] == [OrderStatus.REFUNDED]
    assert sorted(statuses[B]) == sorted([OrderStatus.REVERTED, OrderStatus.PAID])
    assert active_entitlements(db) == {(course, LEARNER): 1}, "B's purchase still pays"

    # B's refund ends the last purchase: no access.
    em_b.tx("refunded", COURSE, LEARNER, LEARNER, ZERO, 300, PROVIDER)
    ix_b.catch_up()
    assert active_entitlements(db) == {}


def test_the_same_certificate_token_id_and_provider_on_two_chains_are_each_chains_own(
    db: Any, chains: dict[int, tuple[Anvil, Emitter]]
) -> None:
    node_b, em_b = chains[B]
    token_id = (COURSE << 160) | int(LEARNER, 16)  # the same on both chains
    ixs = {}
    for cid, (node, em) in chains.items():
        em.tx("courseCreated", COURSE, PROVIDER, 0, "Certified twice")
        em.tx("certificateMinted", token_id, LEARNER, COURSE, PROVIDER, "0x" + "aa" * 28)
        # The provider publishes a record on each chain (a different name on each).
        em.tx("providerProfileSet", PROVIDER, f"School {cid}", "school.example")
        ixs[cid] = make_indexer(
            db, node, [em.address], em.deploy_block, sink=backend_sink(cid), reorg_window=16
        )
        ixs[cid].catch_up()
    before_b = node_b.block_number()
    em_b.tx("certificateRevoked", token_id, 7, PROVIDER)
    ixs[B].catch_up()

    def rows() -> list[tuple[int, int | None, str]]:
        with db.sessions() as s:
            return [
                (c.chain_id, c.token_id, c.status)
                for c in s.scalars(select(Certificate).order_by(Certificate.chain_id))
            ]

    assert rows() == [
        (A, token_id, CertificateStatus.MINTED),
        (B, token_id, CertificateStatus.REVOKED),
    ]
    node_b.rpc("anvil_reorg", node_b.block_number() - before_b, [])
    ixs[B].catch_up()
    assert rows() == [
        (A, token_id, CertificateStatus.MINTED),
        (B, token_id, CertificateStatus.MINTED),
    ]
    assert ixs[A].reorgs == 0
    with db.sessions() as s:
        assert {(p.chain_id, p.name) for p in s.scalars(select(ProviderProfile))} == {
            (A, f"School {A}"),
            (B, f"School {B}"),
        }
