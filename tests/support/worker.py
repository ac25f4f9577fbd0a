"""Seeding and inspection helpers of the worker tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.access.models import AccessSource, Entitlement
from backend.access.service import grant_access
from backend.catalog.models import Course, CourseChain
from backend.certificates.models import Certificate
from backend.certificates.service import request_certificate
from backend.core.config import get_settings
from backend.core.db import process_session_factory, reset_process_engine, session_scope, utcnow
from backend.orders.models import Order, OrderStatus
from backend.orders.service import create_card_order, end_order_access
from backend.outbox.models import OutboxMessage
from backend.outbox.service import Topics, enqueue
from backend.users.models import User
from backend.worker.chain import reset_chain
from backend.worker.models import WorkerJob, WorkerTransaction
from backend.worker.runtime import reset_runtime
from support.market import ADMIN, KEYS, ROOT, Deployed, transact


def reset_settings() -> None:
    """Forget every cached setting, engine, chain and sender (after env changes)."""
    get_settings.cache_clear()
    reset_process_engine()
    reset_chain()
    reset_runtime()


@dataclass
class WorkerEnv:
    """A test's database, chain and the environment a worker needs to use them."""

    database_url: str
    deployed: Deployed
    state_dir: Path
    env: dict[str, str]
    courses: dict[int, int] = field(default_factory=dict)  # on-chain id -> DB id

    @classmethod
    def build(cls, database_url: str, deployed: Deployed, tmp: Path) -> WorkerEnv:
        state = tmp / "state"
        state.mkdir(exist_ok=True)
        env = {
            "TUITION_ENV": "test",
            "TUITION_DATABASE_URL": database_url,
            "TUITION_RPC_URL": deployed.anvil.url,
            "TUITION_CHAIN_ID": "31337",
            "TUITION_NETWORK": "local",
            "TUITION_DEPLOYMENTS_DIR": str(deployed.deployments_dir),
            "TUITION_OPERATOR_PRIVATE_KEY": KEYS[1],
            "TUITION_WORKER_STATE_DIR": str(state),
            "TUITION_WORKER_MAIL_DIR": str(state / "mail"),
            "TUITION_WORKER_EMAIL_BACKEND": "file",
            "TUITION_WORKER_RECONCILE_GRACE": "0",
            "TUITION_WORKER_ALIVE_FILE": str(state / "beat.alive"),
        }
        return cls(database_url, deployed, state, env)

    # ------------------------------------------------------------------ database

    @property
    def factory(self) -> sessionmaker[Session]:
        """The worker's session factory (on this test's database)."""
        return process_session_factory()

    def course(self, onchain_id: int) -> int:
        """The DB id of the course with `onchain_id` (created on first use)."""
        if onchain_id not in self.courses:
            with session_scope(self.factory) as s:
                course = Course(
                    chains=[
                        CourseChain(chain_id=self.deployed.anvil.chain_id, onchain_id=onchain_id)
                    ],
                    provider=self.deployed.market.functions.courseProvider(onchain_id).call(),
                    title=f"Course {onchain_id}",
                    status="published",
                    fiat_price=4900,
                    fiat_currency="eur",
                )
                s.add(course)
                s.flush()
                self.courses[onchain_id] = course.id
        return self.courses[onchain_id]

    def user(self, address: str, email: str | None = "learner@example.com") -> None:
        """A user row (the receipt's recipient)."""
        with session_scope(self.factory) as s:
            s.add(User(address=address, email=email))

    def enrol(
        self,
        learner: str,
        onchain_course: int,
        *,
        on: Deployed | None = None,
        course_id: int | None = None,
    ) -> None:
        """Access recorded on-chain (an operator grant) and its entitlement, as the indexer
        would have applied it: no outbox message. `on`: another chain's deployment (then
        `course_id` names the course registered there)."""
        deployed = on or self.deployed
        ref = keccak(text=f"enrol:{learner}:{onchain_course}")
        transact(
            deployed.w3,
            deployed.market.functions.grantAccess(onchain_course, learner, 3, ref),
            ADMIN,
        )
        course_id = course_id if course_id is not None else self.course(onchain_course)
        with session_scope(self.factory) as s:
            grant_access(
                s,
                address=learner,
                course_id=course_id,
                source=AccessSource.GRANT,
                order_id=None,
                actor="test",
                reason="enrolled",
                on_chain=True,
                chain_ref="0x" + ref.hex(),
                chain_id=deployed.anvil.chain_id,
            )

    def request_certificate(
        self, learner: str, onchain_course: int, mode: str = "mint", *, enrol: bool = True
    ) -> int:
        """The backend's request_certificate (certificate row + outbox message); the learner is
        enrolled first unless `enrol=False` (certificates need access on-chain)."""
        if enrol:
            self.enrol(learner, onchain_course)
        course_id = self.course(onchain_course)
        with session_scope(self.factory) as s:
            return request_certificate(
                s,
                address=learner,
                course_id=course_id,
                default_chain_id=self.deployed.anvil.chain_id,
                mode=mode,
            ).id

    def paid_card_order(self, learner: str, onchain_course: int, *, receipt: bool = True) -> str:
        """A paid card order with its entitlement and outbox messages (grant, receipt)."""
        course_id = self.course(onchain_course)
        with session_scope(self.factory) as s:
            course = s.get(Course, course_id)
            assert course is not None
            order = create_card_order(s, course=course, buyer=learner, amount=4900, currency="eur")
            order.status = OrderStatus.PAID
            order.paid_at = utcnow()
            grant_access(
                s,
                address=learner,
                course_id=course_id,
                source=AccessSource.CARD,
                order_id=order.id,
                actor="test",
                reason="paid by card",
                on_chain=False,  # queues access.chain_grant
            )
            if receipt:
                enqueue(
                    s,
                    Topics.RECEIPT_EMAIL,
                    {"orderId": order.id, "kind": "paid"},
                    dedupe_key=f"receipt:paid:{order.id}",
                )
            return order.id

    def refund_card_order(
        self, order_id: str, *, receipt: bool = True, certificate_reason: int | None = None
    ) -> None:
        """Refund: entitlement revoked, outbox messages (revoke, receipt)."""
        with session_scope(self.factory) as s:
            order = s.get(Order, order_id)
            assert order is not None
            order.status = OrderStatus.REFUNDED
            end_order_access(
                s,
                address=order.recipient,
                course_id=order.course_id,
                order_id=order.id,
                actor="test",
                reason="refunded",
                on_chain=False,  # queues access.chain_revoke
                certificate_reason=certificate_reason,
            )
            if receipt:
                enqueue(
                    s,
                    Topics.RECEIPT_EMAIL,
                    {"orderId": order.id, "kind": "refunded"},
                    dedupe_key=f"receipt:refunded:{order.id}",
                )

    def entitlement_of(self, order_id: str) -> int:
        """The id of the (newest) entitlement of an order."""
        with session_scope(self.factory) as s:
            found = s.scalar(
                select(func.max(Entitlement.id)).where(Entitlement.order_id == order_id)
            )
            assert found is not None, f"order {order_id} has no entitlement"
            return int(found)

    def chain_status(self, entitlement_id: int) -> str:
        """Where the entitlement's on-chain record stands."""
        with session_scope(self.factory) as s:
            return str(s.get_one(Entitlement, entitlement_id).chain_status)

    def certificate(self, certificate_id: int) -> Certificate:
        """A fresh copy of the certificate row."""
        with session_scope(self.factory) as s:
            cert = s.get(Certificate, certificate_id)
            assert cert is not None
            s.expunge(cert)
            return cert

    def count(self, model: Any, *where: Any) -> int:
        """Rows of `model` matching `where`."""
        with session_scope(self.factory) as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def transactions(self, key_prefix: str = "") -> list[WorkerTransaction]:
        """The worker's transaction rows (optionally those whose key starts with a prefix)."""
        with session_scope(self.factory) as s:
            rows = s.scalars(
                select(WorkerTransaction)
                .where(WorkerTransaction.key.like(key_prefix + "%"))
                .order_by(WorkerTransaction.id)
            ).all()
            for row in rows:
                s.expunge(row)
            return list(rows)

    def jobs(self) -> list[WorkerJob]:
        """Every job row."""
        with session_scope(self.factory) as s:
            rows = s.scalars(select(WorkerJob).order_by(WorkerJob.id)).all()
            for row in rows:
                s.expunge(row)
            return list(rows)

    def unpublished(self) -> int:
        """Outbox messages not yet relayed."""
        return self.count(OutboxMessage, OutboxMessage.published_at.is_(None))

    def mail_files(self) -> list[Path]:
        """The .eml files the file backend wrote."""
        return sorted((self.state_dir / "mail").glob("*.eml"))

    # ------------------------------------------------------------------ processes

    def spawn(self, *args: str, extra: dict[str, str] | None = None, log: str = "worker") -> Proc:
        """Run `tuition ARGS` with this environment (its own process group)."""
        env = {**os.environ, **self.env}
        env.pop("TUITION_REDIS_URL", None)  # the embedded broker unless the test says otherwise
        env.update(extra or {})
        out = (self.state_dir / f"{log}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return Proc(proc, self.state_dir / f"{log}.log")


@dataclass
class Proc:
    """A spawned `tuition` process."""

    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (worker, pool children, embedded beat)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it hangs."""
        self.kill(signal.SIGTERM)

    def output(self) -> str:
        """What it logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""
