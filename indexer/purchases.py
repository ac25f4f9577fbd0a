"""Bulk recording of `CoursePurchased` during backfills.

`record_crypto_purchase` (the backend's) is the reference: per purchase it matches the quote,
writes the order, grants access and audits both, through the ORM — a few hundred purchases per
second. A backfill replays tens of thousands. This module writes the very same rows (order,
entitlement, the two audit entries, the access metric) with bulk inserts (the entitlement and
its audit entry built by `backend.access.service.OnChainGrants`, the order's row and audited
state by `backend.orders.service.OrderRow` / `order_snapshot`, so every grant still comes from
the access service),
but only for the purchases whose outcome involves no decision: the course is linked, no order
of that transaction exists yet, the orderRef is zero or matches no order (no quote to compare), the
recipient has no active entitlement to the course, and the (course, recipient) pair occurs
once in the run. Everything else goes through `record_crypto_purchase` itself, in chain order.
A test compares both paths row by row, so a change in the backend's records shows up there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, Entitlement
from backend.access.service import EntitlementRow, OnChainGrants
from backend.audit.models import AuditEntry
from backend.audit.service import COLUMNS as AUDIT_COLUMNS
from backend.audit.service import row as audit_row
from backend.catalog.models import CourseChain
from backend.core.db import utcnow
from backend.core.logging import request_id_var
from backend.core.security import ZERO_REF
from backend.orders.models import Order, OrderStatus, Rail
from backend.orders.service import OrderRow, order_snapshot
from indexer.bulk import BulkWriter, chunks
from indexer.decoding import DecodedLog, keccak256

ORDERS = cast(Table, Order.__table__)
ENTITLEMENTS = cast(Table, Entitlement.__table__)
AUDIT_LOG = cast(Table, AuditEntry.__table__)
ACTOR = "indexer"


def _uuid4_batch(n: int) -> list[str]:
    # One urandom call for the whole batch instead of one per order.
    raw = os.urandom(16 * n)
    return [str(uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4)) for i in range(n)]


class PurchaseRun:
    """Records a run of consecutive `CoursePurchased` logs of one batch."""

    def __init__(
        self,
        session: Session,
        *,
        chain_id: int,
        head: int,
        confirmations: int,
        slow_path: Callable[[DecodedLog], dict[str, Any]],
        course_ids: dict[int, int] | None = None,
    ) -> None:
        self.session = session
        self.chain_id = chain_id
        self.head = head
        self.confirmations = confirmations
        self.slow_path = slow_path
        # A cache of course links shared across batches (the live path's first query).
        self.course_ids = course_ids if course_ids is not None else {}
        self.bulk_count = 0
        self.slow_count = 0

    def record(self, logs: Sequence[DecodedLog]) -> list[dict[str, Any]]:
        """Effects for `logs`, in order (bulk where safe, the backend's service elsewhere)."""
        self.session.flush()  # the preload queries must see this batch's earlier changes
        courses = self._courses({int(lg.args["courseId"]) for lg in logs})
        txs_with_orders = self._txs_with_orders({lg.tx_hash.lower() for lg in logs})
        known_refs = self._known_refs(
            {str(lg.args["orderRef"]).lower() for lg in logs} - {ZERO_REF}
        )
        entitled = self._entitled(
            {(courses[cid], lg.args["recipient"]) for lg in logs
             if (cid := int(lg.args["courseId"])) in courses}
        )  # fmt: skip
        seen_pairs: dict[tuple[int, str], int] = {}
        for lg in logs:
            cid = int(lg.args["courseId"])
            if cid in courses:
                pair = (courses[cid], lg.args["recipient"])
                seen_pairs[pair] = seen_pairs.get(pair, 0) + 1

        effects: list[dict[str, Any]] = []
        pending: list[tuple[int, DecodedLog, int]] = []  # (effect slot, log, course id)
        for lg in logs:
            cid = int(lg.args["courseId"])
            course_id = courses.get(cid)
            ref = str(lg.args["orderRef"]).lower()
            simple = (
                course_id is not None
                and lg.tx_hash.lower() not in txs_with_orders
                and ref not in known_refs
                and (course_id, lg.args["recipient"]) not in entitled
                and seen_pairs.get((course_id, lg.args["recipient"])) == 1
            )
            if simple:
                assert course_id is not None
                effects.append({})
                pending.append((len(effects) - 1, lg, course_id))
                continue
            # Decisions to make: flush what is pending (chain order), then ask the backend.
            self._write(pending, effects)
            pending = []
            effects.append(self.slow_path(lg))
            self.slow_count += 1
        self._write(pending, effects)
        return effects

    # ------------------------------------------------------------------ preloads

    def _courses(self, onchain_ids: set[int]) -> dict[int, int]:
        out = {o: self.course_ids[o] for o in onchain_ids if o in self.course_ids}
        for part in chunks(sorted(onchain_ids - out.keys())):
            rows = self.session.execute(
                select(CourseChain.onchain_id, CourseChain.course_id).where(
                    CourseChain.chain_id == self.chain_id, CourseChain.onchain_id.in_(part)
                )
            )
            out.update({int(o): int(i) for o, i in rows})
        # Links are only undone by this indexer (it then drops them from the cache); a link made
        # earlier in this batch is cached too, and dropped if the batch rolls back.
        self.course_ids.update(out)
        return out

    def _txs_with_orders(self, tx_hashes: set[str]) -> set[str]:
        out: set[str] = set()
        for part in chunks(sorted(tx_hashes)):
            out.update(
                self.session.scalars(
                    select(Order.tx_hash).where(
                        Order.chain_id == self.chain_id, Order.tx_hash.in_(part)
                    )
                )
            )
        return out

    def _known_refs(self, refs: set[str]) -> set[str]:
        out: set[str] = set()
        for part in chunks(sorted(refs)):
            out.update(
                self.session.scalars(select(Order.order_ref).where(Order.order_ref.in_(part)))
            )
        return out

    def _entitled(self, pairs: set[tuple[int, str]]) -> set[tuple[int, str]]:
        if not pairs:
            return set()
        out: set[tuple[int, str]] = set()
        if self.session.get_bind().dialect.name == "postgresql":
            # One index probe per pair, whatever the planner believes about a freshly loaded
            # table: LIMIT 1 keeps the lateral subquery a parameterized index scan. (A plain
            # `address IN (...)` was filtered row by row while statistics were missing.)
            # The lists travel as two comma-joined strings: psycopg's array dumper costs ~10 us
            # per element, a string nothing.
            ordered = sorted(pairs)
            for part in chunks(ordered, 20_000):
                rows = self.session.execute(
                    text(
                        "SELECT t.c, t.a FROM unnest("
                        "CAST(string_to_array(:cs, ',') AS integer[]), "
                        "string_to_array(:as_, ',')) AS t(c, a) CROSS JOIN LATERAL ("
                        "SELECT 1 FROM entitlements e WHERE e.course_id = t.c "
                        "AND e.address = t.a AND e.revoked_at IS NULL LIMIT 1) AS hit"
                    ),
                    {
                        "cs": ",".join(str(c) for c, _ in part),
                        "as_": ",".join(a for _, a in part),
                    },
                )
                out.update((int(c), str(a)) for c, a in rows)
            return out
        addresses = sorted({a for _, a in pairs})
        courses = sorted({c for c, _ in pairs})
        for part in chunks(addresses):
            rows = self.session.execute(
                select(Entitlement.course_id, Entitlement.address).where(
                    Entitlement.address.in_(part),
                    Entitlement.course_id.in_(courses),
                    Entitlement.revoked_at.is_(None),
                )
            )
            out.update((int(c), str(a)) for c, a in rows)
        return out & pairs

    # ------------------------------------------------------------------ writes

    def _write(
        self, pending: list[tuple[int, DecodedLog, int]], effects: list[dict[str, Any]]
    ) -> None:
        if not pending:
            return
        self.session.flush()
        writer = BulkWriter(self.session)
        n = len(pending)
        order_ids = _uuid4_batch(n)
        ent_ids = writer.reserve_ids(ENTITLEMENTS, n)
        now = utcnow()
        request_id = request_id_var.get()
        # The entitlements and their audit entries come from the access service's own helper.
        grants = OnChainGrants(
            source=AccessSource.CRYPTO,
            actor=ACTOR,
            now=now,
            request_id=request_id,
            chain_id=self.chain_id,
        )
        # Each table's rows are built while its COPY streams (the server indexes the first rows
        # while Python builds the next); the orders pass keeps what the later passes reuse.
        built: list[tuple[OrderRow, int]] = []

        def order_rows() -> Iterator[OrderRow]:
            for (slot, lg, course_id), order_id, ent_id in zip(
                pending, order_ids, ent_ids, strict=True
            ):
                a = lg.args
                tx_hash, block_hash = lg.tx_hash.lower(), lg.block_hash.lower()
                ref = str(a["orderRef"]).lower()
                anomalies = (
                    [] if ref == ZERO_REF else [{"field": "order_ref", "quoted": None, "paid": ref}]
                )
                order_ref = keccak256(f"{self.chain_id}:{tx_hash}:{lg.log_index}".encode()).hex()
                row = OrderRow(
                    order_id, Rail.CRYPTO, course_id, a["buyer"], a["recipient"], int(a["amount"]),
                    a["token"], int(a["fee"]), OrderStatus.PAID, "0x" + order_ref, self.chain_id,
                    tx_hash, lg.log_index, block_hash, lg.block_number,
                    self.head - lg.block_number >= self.confirmations, anomalies, now, now, now,
                )  # fmt: skip
                built.append((row, ent_id))
                effects[slot] = {"order_id": order_id, "bulk": True}
                yield row

        entitlements: list[EntitlementRow] = []

        def entitlement_rows() -> Iterator[EntitlementRow]:
            for order, ent_id in built:
                assert order.recipient is not None
                entitlement = grants.row(ent_id, order.recipient, order.course_id, order.id)
                entitlements.append(entitlement)
                yield entitlement

        def audit_rows() -> Iterator[tuple[Any, ...]]:
            for (order, _), entitlement in zip(built, entitlements, strict=True):
                reason = f"on-chain purchase {order.tx_hash}:{order.log_index}" + (
                    " with anomalies" if order.anomalies else ""
                )
                yield audit_row(
                    at=now, actor=ACTOR, action="order.paid", subject_type="order",
                    subject_id=order.id, before=None, after=order_snapshot(order), reason=reason,
                    request_id=request_id,
                )  # fmt: skip
                yield grants.audit_row(entitlement, reason=reason)

        writer.insert(ORDERS, OrderRow._fields, order_rows(), count=n, trusted=True)
        writer.insert(ENTITLEMENTS, grants.COLUMNS, entitlement_rows(), count=n, trusted=True)
        writer.insert(AUDIT_LOG, AUDIT_COLUMNS, audit_rows(), count=2 * n, trusted=True)
        grants.counted(n)
        self.bulk_count += n
