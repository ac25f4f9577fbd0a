"""One worker, two chains: each row's transaction goes to its own chain, from that chain's own
nonce stream, and each chain's reconciler judges only its own records."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from support.market import ADMIN, OPERATOR, PROVIDER, Deployed, new_learner
from support.worker import WorkerEnv

from backend.access import tasks as access_tasks
from backend.access.models import Entitlement
from backend.access.service import admin_grant
from backend.catalog.models import Course, CourseChain
from backend.certificates.models import CertificateStatus
from backend.certificates.service import request_certificate, token_id_for
from backend.core.db import session_scope
from backend.worker import tasks
from backend.worker.models import WorkerNonce, WorkerTransaction

pytestmark = pytest.mark.chain

Env = tuple[WorkerEnv, Deployed, Deployed]


def relay() -> int:
    return int(tasks.relay_outbox.apply().get())


def _course(wenv: WorkerEnv, title: str, chains: dict[int, int]) -> int:
    """A published course registered on `chains` (chain id -> on-chain id)."""
    with session_scope(wenv.factory) as s:
        course = Course(
            provider=PROVIDER.address,
            title=title,
            status="published",
            chains=[CourseChain(chain_id=c, onchain_id=o) for c, o in chains.items()],
        )
        s.add(course)
        s.flush()
        return course.id


def _chain_ids(rows: list[Any]) -> set[int]:
    return {row.chain_id for row in rows}


def test_a_certificate_is_minted_on_its_chain_and_a_grant_recorded_on_the_workers_own(
    two_chains: Env,
) -> None:
    wenv, first, second = two_chains
    a, b = first.anvil.chain_id, second.anvil.chain_id
    learner = new_learner(first.anvil).address

    # A course registered only on the second chain: its certificate is that chain's.
    only_b = _course(wenv, "Only on B", {b: second.courses[0]})
    wenv.enrol(learner, second.courses[0], on=second, course_id=only_b)
    with session_scope(wenv.factory) as s:
        cert = request_certificate(s, address=learner, course_id=only_b, default_chain_id=a)
        cert_id, cert_chain = cert.id, cert.chain_id
    assert cert_chain == b
    assert relay() == 1
    assert wenv.certificate(cert_id).status == CertificateStatus.MINTED
    token = token_id_for(second.courses[0], learner)
    assert second.certificate.functions.balanceOf(learner).call() == 1
    assert second.certificate.functions.ownerOf(token).call() == learner
    assert first.certificate.functions.balanceOf(learner).call() == 0

    # An admin grant of a course on both chains: recorded on the worker's own chain (A).
    both = _course(wenv, "On both", {a: first.courses[1], b: second.courses[1]})
    with session_scope(wenv.factory) as s:
        granted = admin_grant(
            s, admin=ADMIN.address, address=learner, course_id=both, reason="scholarship"
        )
        granted_id = granted.id
    relay()
    assert first.market.functions.hasAccess(first.courses[1], learner).call() is True
    assert second.market.functions.hasAccess(second.courses[1], learner).call() is False
    with session_scope(wenv.factory) as s:
        ent = s.get(Entitlement, granted_id)
        assert ent is not None and (ent.chain_status, ent.chain_id) == ("recorded", a)
        nonces = {(n.chain_id, n.sender) for n in s.scalars(select(WorkerNonce))}
    # One nonce stream per chain for the one operator key; each transaction on its chain.
    assert nonces == {(a, OPERATOR.address), (b, OPERATOR.address)}
    assert _chain_ids(wenv.transactions("mint:")) == {b}
    assert _chain_ids(wenv.transactions("grant:")) == {a}
    for row in wenv.transactions():
        node = first.anvil if row.chain_id == a else second.anvil
        receipt = node.rpc("eth_getTransactionReceipt", row.tx_hash)
        assert receipt is not None and int(receipt["status"], 16) == 1


def test_each_chains_reconciler_judges_only_its_own_records(two_chains: Env) -> None:
    wenv, first, second = two_chains
    a, b = first.anvil.chain_id, second.anvil.chain_id
    learner = new_learner(first.anvil).address
    course = _course(wenv, "Bought on B", {a: first.courses[0], b: second.courses[0]})
    wenv.enrol(learner, second.courses[0], on=second, course_id=course)

    summary = access_tasks.reconcile_access.apply().get()

    # Chain A has no record of it, and must not call that drift: B holds it, and agrees.
    assert summary["drift"] == 0 and summary["checked"] == 0
    assert summary["chains"][str(b)]["drift"] == 0 and summary["chains"][str(b)]["checked"] == 1
    with session_scope(wenv.factory) as s:
        assert s.scalars(select(WorkerTransaction)).all() == []
