"""Event handlers: what each CourseMarket / CourseCertificate event does to the database.

Money and access go through the backend's domain services (`record_crypto_purchase`,
`record_crypto_refund`, `revert_crypto_*`, `grant_access` / `revoke_access`,
`link_onchain_course`, `mirror_price`, `mirror_course_update`). What the backend has no service
for (undoing catalog mirrors after a reorg, mirroring certificates) is written here on top of the
backend's models, audited like the services do.

Every handler returns an "effect": a small JSON record of what it changed, stored with the
applied log, from which `undo` restores the previous state when a reorg orphans the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.access.models import AccessSource, Entitlement, OnchainSource
from backend.access.service import active_entitlement, grant_access
from backend.audit.service import record as audit
from backend.catalog.models import CertificateMode, Course, Token, TokenPrice
from backend.catalog.service import (
    course_by_onchain_id,
    link_onchain_course,
    mirror_course_update,
    mirror_price,
    unlinked_draft,
)
from backend.certificates.models import Certificate, CertificateStatus
from backend.certificates.service import current_certificate_on
from backend.core.db import utcnow
from backend.orders.models import Order
from backend.orders.service import (
    UnknownOnchainCourseError,
    end_order_access,
    order_snapshot,
    record_crypto_purchase,
    record_crypto_refund,
    revert_crypto_purchase,
    revert_crypto_refund,
)
from backend.payouts.models import PayoutKind
from backend.payouts.service import forget_payout, record_payout
from backend.provider.models import ProviderProfile
from backend.provider.profiles import profile_hash
from indexer.decoding import DecodedLog, json_safe
from indexer.models import IndexerAppliedLog
from indexer.purchases import PurchaseRun
from indexer.sink import BatchContext, SinkBatch
from indexer.store import AppliedRow

log = logging.getLogger(__name__)

ACTOR = "indexer"
REORG = "reorg"
# ICourseMarket.AccessSource -> the backend's entitlement source.
# Entitlements an operator's revokeAccess can end (recorded with grantAccess).
MIRRORED_SOURCES = (AccessSource.CARD, AccessSource.FREE, AccessSource.GRANT)
# Runs of purchases shorter than this go through the backend's service one by one (the bulk
# path is also the faster one for a single live purchase: fewer statements than the ORM's).
BULK_MIN = 1
# Market and certificate configuration: kept as audit entries (who changed what, in which
# transaction), with a compensating entry when a reorg orphans the change.
CONFIG_EVENTS = {
    "FeeChanged": ("market.fee_changed", "market"),
    "TreasuryChanged": ("market.treasury_changed", "market"),
    "DelegateSet": ("market.delegate_set", "provider"),
    "IssuerSet": ("certificate.issuer_set", "provider"),
}


def _int(value: Any) -> int:
    return int(value)


class BackendSink:
    """Applies events through the backend's services (one `HandlerBatch` per transaction)."""

    def __init__(
        self,
        *,
        chain_id: int,
        access_confirmations: int = 0,
        confirmations: int = 12,
        market: str | None = None,
        certificate: str | None = None,
        bulk: bool = True,
    ) -> None:
        self.chain_id = chain_id
        # Record simple purchases with bulk inserts (indexer.purchases); False: always the
        # backend's per-purchase service (the tests compare both).
        self.bulk = bulk
        self.access_confirmations = access_confirmations
        self.confirmations = confirmations
        self.market = market
        self.certificate = certificate
        # on-chain course id -> course id, of committed links only (see rollback()).
        self.course_ids: dict[int, int] = {}
        levels = {"final": confirmations}
        if access_confirmations > 0:
            levels["access"] = access_confirmations
        self.levels: Mapping[str, int] = levels

    def open(self, session: Session, ctx: BatchContext) -> SinkBatch:
        """A batch on the engine's session."""
        return HandlerBatch(self, session, ctx)

    def rollback(self) -> None:
        """The engine's transaction failed: forget cached links it may have made."""
        self.course_ids.clear()

    def confirm(self, session: Session, chain_id: int, level: str, first: int, last: int) -> None:
        """Orders of blocks first..last are confirmed; deferred grants happen now."""
        if level == "final":
            # One statement through the partial index of unconfirmed orders: it holds only the
            # orders near the head, so a backfill (inserted already confirmed) costs nothing here.
            session.execute(
                update(Order)
                .where(
                    Order.chain_id == chain_id,
                    Order.block_number.between(first, last),
                    ~Order.confirmed,  # spelled as the partial index's predicate
                )
                .values(confirmed=True, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        elif level == "access":
            rows = session.scalars(
                select(IndexerAppliedLog)
                .where(
                    IndexerAppliedLog.chain_id == chain_id,
                    IndexerAppliedLog.event == "CoursePurchased",
                    IndexerAppliedLog.block_number.between(first, last),
                )
                .order_by(IndexerAppliedLog.block_number, IndexerAppliedLog.log_index)
            ).all()
            batch = HandlerBatch(self, session, BatchContext(chain_id, "", last))
            for row in rows:
                effect = batch.purchase_now(
                    row.block_number, row.block_hash, row.tx_hash, row.log_index, row.args
                )
                row.effect = {**row.effect, **effect, "deferred": False}


class HandlerBatch:
    """The effects of one indexer transaction."""

    def __init__(self, sink: BackendSink, session: Session, ctx: BatchContext) -> None:
        self.sink = sink
        self.session = session
        self.ctx = ctx
        self.chain_id = ctx.chain_id
        # Orphaned purchases whose revert waits until the new chain is applied: a purchase
        # re-included in the new chain then keeps its order and its one active entitlement.
        self.orphaned_purchases: list[AppliedRow] = []
        self._handlers: dict[str, Callable[[DecodedLog], dict[str, Any]]] = {
            "CourseCreated": self.course_created,
            "CourseUpdated": self.course_updated,
            "PriceSet": self.price_set,
            "CoursePurchased": self.course_purchased,
            "AccessGranted": self.access_granted,
            "AccessRevoked": self.access_revoked,
            "Refunded": self.refunded,
            "CertificateMinted": self.certificate_minted,
            "CertificateRevoked": self.certificate_revoked,
            "CertificateRemoved": self.certificate_removed,
            "CertificateReplaced": self.certificate_replaced,
            "ProviderProfileSet": self.provider_profile_set,
            "ProviderVerificationSet": self.provider_verification_set,
            "Released": self.released,
            "Withdrawn": self.withdrawn,
            "TokenAllowed": self.token_allowed,
            **{event: self.config_changed for event in CONFIG_EVENTS},
        }
        self._undo: dict[str, Callable[[AppliedRow], None]] = {
            "CourseCreated": self.undo_course_created,
            "CourseUpdated": self.undo_course_updated,
            "PriceSet": self.undo_price_set,
            "CoursePurchased": self.undo_course_purchased,
            "AccessGranted": self.undo_access_granted,
            "AccessRevoked": self.undo_access_revoked,
            "Refunded": self.undo_refunded,
            "CertificateMinted": self.undo_certificate_minted,
            "CertificateRevoked": self.undo_certificate_revoked,
            "CertificateRemoved": self.undo_certificate_removed,
            "CertificateReplaced": self.undo_certificate_replaced,
            "ProviderProfileSet": self.undo_provider_record,
            "ProviderVerificationSet": self.undo_provider_record,
            "Released": self.undo_payout,
            "Withdrawn": self.undo_payout,
            "TokenAllowed": self.undo_token_allowed,
            **{event: self.undo_config_changed for event in CONFIG_EVENTS},
        }

    # ------------------------------------------------------------------ protocol

    def apply(self, logs: Sequence[DecodedLog]) -> list[dict[str, Any]]:
        """Apply logs in chain order."""
        effects: list[dict[str, Any]] = []
        bulk = (
            self.sink.bulk
            and self.sink.access_confirmations == 0
            and not self.ctx.reorg
            and not self.orphaned_purchases
        )
        i, n = 0, len(logs)
        while i < n:
            lg = logs[i]
            if bulk and lg.event == "CoursePurchased":
                j = i + 1
                while j < n and logs[j].event == "CoursePurchased":
                    j += 1
                if j - i >= BULK_MIN:
                    run = PurchaseRun(
                        self.session,
                        chain_id=self.chain_id,
                        head=self.ctx.head,
                        confirmations=self.sink.confirmations,
                        slow_path=self.course_purchased,
                        course_ids=self.sink.course_ids,
                    )
                    effects.extend(run.record(logs[i:j]))
                    i = j
                    continue
            handler = self._handlers.get(lg.event)
            # Events without a handler (Locked, Transfer, ...) are kept as applied logs only.
            effects.append(handler(lg) if handler is not None else {})
            i += 1
        return effects

    def undo(self, rows: Sequence[AppliedRow]) -> None:
        """Undo orphaned logs, newest first."""
        for row in rows:
            undo = self._undo.get(row.event)
            if undo is not None:
                undo(row)

    def close(self) -> None:
        """Revert orphaned purchases that the new chain did not re-include."""
        for row in self.orphaned_purchases:
            if row.effect.get("deferred") or row.effect.get("error"):
                continue  # access was never granted for it
            revert_crypto_purchase(
                self.session,
                chain_id=self.chain_id,
                tx_hash=row.tx_hash,
                log_index=row.log_index,
                block_hash=row.block_hash,
            )
        self.orphaned_purchases.clear()

    # ------------------------------------------------------------------ catalog

    def course_created(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        onchain_id = a["courseId"]
        if course_by_onchain_id(self.session, self.chain_id, onchain_id) is not None:
            return {"noop": True}
        title = str(a["title"])
        draft = unlinked_draft(self.session, self.chain_id, a["provider"], title)
        prev = None if draft is None else {"refund_window": draft.refund_window}
        course = link_onchain_course(
            self.session,
            self.chain_id,
            a["provider"],
            title,
            onchain_id,
            refund_window=a["refundWindow"],
            block_number=lg.block_number,
        )
        return {"course_id": course.id, "created": draft is None, "prev": prev}

    def undo_course_created(self, row: AppliedRow) -> None:
        course_id = row.effect.get("course_id")
        if course_id is None:
            return
        course = self.session.get(Course, course_id)
        if course is None:
            return
        self.sink.course_ids.pop(int(row.args["courseId"]), None)
        reg = course.registration(self.chain_id)
        before = _course_state(course, self.chain_id)
        # A course the indexer created stays as an unlinked draft: rows may point at it.
        if reg is not None:
            course.chains.remove(reg)
        prev = row.effect.get("prev") or {"refund_window": course.refund_window}
        course.refund_window = int(prev.get("refund_window") or 0)
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="course.unlink_onchain",
            subject_type="course",
            subject_id=course.id,
            before=before,
            after=_course_state(course, self.chain_id),
            reason=f"{REORG}: CourseCreated in block {row.block_hash} was reorganized away",
        )

    def course_updated(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        course = course_by_onchain_id(self.session, self.chain_id, a["courseId"])
        if course is None:
            return {"skipped": "unknown course"}
        prev = _course_state(course, self.chain_id)
        mirror_course_update(
            self.session,
            chain_id=self.chain_id,
            onchain_id=a["courseId"],
            listed=a["listed"],
            refund_window=a["refundWindow"],
            block_number=lg.block_number,
        )
        return {"course_id": course.id, "prev": prev}

    def undo_course_updated(self, row: AppliedRow) -> None:
        course_id, prev = row.effect.get("course_id"), row.effect.get("prev")
        course = self.session.get(Course, course_id) if course_id is not None else None
        if course is None or prev is None:
            return
        _set_course_state(course, self.chain_id, prev)
        self.session.flush()

    def price_set(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        course = course_by_onchain_id(self.session, self.chain_id, a["courseId"])
        if course is None:
            return {"skipped": "unknown course"}
        current = self.session.scalar(
            select(TokenPrice).where(
                TokenPrice.course_id == course.id,
                TokenPrice.chain_id == self.chain_id,
                TokenPrice.token == a["token"],
            )
        )
        prev = (
            None
            if current is None
            else {
                "price": str(current.price),
                "accepted": current.accepted,
                "updated_block": current.updated_block,
            }
        )
        mirror_price(
            self.session,
            chain_id=self.chain_id,
            course_onchain_id=a["courseId"],
            token=a["token"],
            price=a["price"],
            accepted=a["accepted"],
            block_number=lg.block_number,
        )
        return {"course_id": course.id, "token": a["token"], "prev": prev}

    def undo_price_set(self, row: AppliedRow) -> None:
        course_id = row.effect.get("course_id")
        if course_id is None:
            return
        current = self.session.scalar(
            select(TokenPrice).where(
                TokenPrice.course_id == course_id,
                TokenPrice.chain_id == self.chain_id,
                TokenPrice.token == row.effect["token"],
            )
        )
        if current is None:
            return
        prev = row.effect.get("prev")
        if prev is None:
            self.session.delete(current)
        else:
            current.price = _int(prev["price"])
            current.accepted = bool(prev["accepted"])
            current.updated_block = int(prev["updated_block"])
        self.session.flush()

    # ------------------------------------------------------------------ purchases

    def course_purchased(self, lg: DecodedLog) -> dict[str, Any]:
        if self.sink.access_confirmations > 0 and (
            self.ctx.head - lg.block_number < self.sink.access_confirmations
        ):
            # Not deep enough to grant yet: the "access" confirmation level records it later.
            return {"deferred": True}
        return self.purchase_now(lg.block_number, lg.block_hash, lg.tx_hash, lg.log_index, lg.args)

    def purchase_now(
        self,
        block_number: int,
        block_hash: str,
        tx_hash: str,
        log_index: int,
        args: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Record a purchase (and its grant) through the backend."""
        self._rematch_reincluded(tx_hash, log_index, args)
        confirmed = self.ctx.head - block_number >= self.sink.confirmations
        try:
            order = record_crypto_purchase(
                self.session,
                chain_id=self.chain_id,
                tx_hash=tx_hash,
                log_index=log_index,
                block_hash=block_hash,
                block_number=block_number,
                course_onchain_id=_int(args["courseId"]),
                buyer=args["buyer"],
                recipient=args["recipient"],
                token=args["token"],
                amount=_int(args["amount"]),
                fee=_int(args["fee"]),
                order_ref=args["orderRef"],
                confirmed=confirmed,
            )
        except UnknownOnchainCourseError as exc:
            # Money moved for a course we do not know: keep the log, shout, never drop it.
            log.error("chain %s: purchase %s#%d: %s", self.chain_id, tx_hash, log_index, exc)
            return {"error": "unknown course"}
        return {"order_id": order.id}

    def undo_course_purchased(self, row: AppliedRow) -> None:
        # The revert waits for close(); the order is no longer confirmed in any case.
        self.orphaned_purchases.append(row)
        self.session.execute(
            update(Order)
            .where(
                Order.chain_id == self.chain_id,
                Order.tx_hash == row.tx_hash.lower(),
                Order.log_index == row.log_index,
                Order.block_hash == row.block_hash.lower(),
            )
            .values(confirmed=False)
        )

    def _rematch_reincluded(self, tx_hash: str, log_index: int, args: Mapping[str, Any]) -> None:
        # The same transaction re-included at another log index: move its order to the new log
        # first, so the backend sees "the same purchase again" and keeps its one entitlement.
        for row in list(self.orphaned_purchases):
            if not (
                row.tx_hash == tx_hash
                and row.log_index != log_index
                and str(row.args.get("courseId")) == str(args["courseId"])
                and row.args.get("recipient") == args["recipient"]
            ):
                continue
            self.orphaned_purchases.remove(row)
            if row.effect.get("deferred") or row.effect.get("error"):
                return
            tx = tx_hash.lower()
            order = self.session.scalar(
                select(Order).where(
                    Order.chain_id == self.chain_id,
                    Order.tx_hash == tx,
                    Order.log_index == row.log_index,
                    Order.block_hash == row.block_hash.lower(),
                )
            )
            clash = self.session.scalar(
                select(Order.id).where(
                    Order.chain_id == self.chain_id,
                    Order.tx_hash == tx,
                    Order.log_index == log_index,
                )
            )
            if order is not None and clash is None:
                before = order_snapshot(order)
                order.log_index = log_index
                self.session.flush()
                audit(
                    self.session,
                    actor=ACTOR,
                    action="order.update",
                    subject_type="order",
                    subject_id=order.id,
                    before=before,
                    after=order_snapshot(order),
                    reason=f"{REORG}: purchase {tx}:{row.log_index} re-included at log {log_index}",
                )
            else:
                # Another purchase of the same transaction holds that index: end this one; the
                # backend re-activates it from its REVERTED state when it is recorded.
                revert_crypto_purchase(
                    self.session,
                    chain_id=self.chain_id,
                    tx_hash=row.tx_hash,
                    log_index=row.log_index,
                    block_hash=row.block_hash,
                )
            return

    def refunded(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        try:
            order = record_crypto_refund(
                self.session,
                chain_id=self.chain_id,
                tx_hash=lg.tx_hash,
                log_index=lg.log_index,
                block_hash=lg.block_hash,
                block_number=lg.block_number,
                course_onchain_id=_int(a["courseId"]),
                learner=a["learner"],
                payer=a["payer"],
                token=a["token"],
                amount=_int(a["amount"]),
                by=a["by"],
            )
        except UnknownOnchainCourseError as exc:
            log.error("chain %s: refund %s#%d: %s", self.chain_id, lg.tx_hash, lg.log_index, exc)
            return {"error": "unknown course"}
        return {"order_id": order.id if order is not None else None}

    def undo_refunded(self, row: AppliedRow) -> None:
        revert_crypto_refund(
            self.session,
            chain_id=self.chain_id,
            tx_hash=row.tx_hash,
            log_index=row.log_index,
            block_hash=row.block_hash,
        )

    # ------------------------------------------------------------------ payouts

    def _payout(self, lg: DecodedLog, kind: str, account: str, amount: Any, fee: Any) -> Any:
        entry = record_payout(
            self.session,
            kind=kind,
            account=account,
            token=lg.args["token"],
            amount=_int(amount),
            fee=_int(fee),
            chain_id=self.chain_id,
            tx_hash=lg.tx_hash,
            log_index=lg.log_index,
            block_hash=lg.block_hash,
            block_number=lg.block_number,
        )
        return {"payout_id": entry.id}

    def released(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        return self._payout(lg, PayoutKind.RELEASED, a["provider"], a["net"], a["fee"])

    def withdrawn(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        return self._payout(lg, PayoutKind.WITHDRAWN, a["payee"], a["amount"], 0)

    def undo_payout(self, row: AppliedRow) -> None:
        forget_payout(
            self.session, chain_id=self.chain_id, tx_hash=row.tx_hash, log_index=row.log_index
        )

    # ------------------------------------------------------------------ configuration

    def token_allowed(self, lg: DecodedLog) -> dict[str, Any]:
        token = self.session.get(Token, (self.chain_id, lg.args["token"]))
        if token is None:
            # Nobody described it (symbol, decimals): prices in it are not listed anyway.
            log.warning("chain %s: TokenAllowed for unknown token %s", self.chain_id,
                        lg.args["token"])  # fmt: skip
            return {"skipped": "unknown token"}
        prev, token.allowed = token.allowed, bool(lg.args["allowed"])
        self._audit_config(lg, "market.token_allowed", "token", token.address,
                           {"allowed": prev}, {"allowed": token.allowed})  # fmt: skip
        return {"token": token.address, "prev": prev}

    def undo_token_allowed(self, row: AppliedRow) -> None:
        if "prev" not in row.effect:
            return
        token = self.session.get(Token, (self.chain_id, row.effect["token"]))
        if token is not None:
            token.allowed = bool(row.effect["prev"])
        self._audit_reverted(row, "market.token_allowed", "token", row.effect["token"])

    def config_changed(self, lg: DecodedLog) -> dict[str, Any]:
        action, subject = CONFIG_EVENTS[lg.event]
        subject_id = lg.args.get("provider", lg.address) if subject == "provider" else lg.address
        self._audit_config(lg, action, subject, subject_id, None, json_safe(lg.args))
        return {"audited": action}

    def undo_config_changed(self, row: AppliedRow) -> None:
        action, subject = CONFIG_EVENTS[row.event]
        subject_id = row.args.get("provider", row.address) if subject == "provider" else row.address
        self._audit_reverted(row, action, subject, subject_id)

    def _audit_config(
        self,
        lg: DecodedLog,
        action: str,
        subject_type: str,
        subject_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any],
    ) -> None:
        audit(
            self.session,
            actor=ACTOR,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            before=before,
            after=after,
            reason=f"on-chain {lg.event} {lg.tx_hash}:{lg.log_index}",
        )

    def _audit_reverted(
        self, row: AppliedRow, action: str, subject_type: str, subject: str
    ) -> None:
        audit(
            self.session,
            actor=REORG,
            action=f"{action}.reverted",
            subject_type=subject_type,
            subject_id=subject,
            before=json_safe(row.args),
            reason=f"orphaned {row.event} {row.tx_hash}:{row.log_index} in {row.block_hash}",
        )

    # ------------------------------------------------------------------ operator grants

    def _order_by_ref(self, ref: str) -> Order | None:
        return self.session.scalar(select(Order).where(Order.order_ref == ref.lower()))

    def _mirrored_entitlement(self, course_id: int, learner: str, ref: str) -> Entitlement | None:
        """The entitlement whose on-chain record is `ref` (the backend's grants carry the row's
        `chain_ref`; the chain keeps its first 21 bytes)."""
        digest = ref.lower()[: 2 + 42]
        rows = self.session.scalars(
            select(Entitlement).where(
                Entitlement.course_id == course_id,
                Entitlement.address == learner,
                Entitlement.chain_ref.is_not(None),
            )
        ).all()
        return next((e for e in rows if (e.chain_ref or "")[: 2 + 42] == digest), None)

    def access_granted(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        course = course_by_onchain_id(self.session, self.chain_id, a["courseId"])
        if course is None:
            return {"skipped": "unknown course"}
        source = OnchainSource.ADOPTED_AS.get(int(a["source"]), AccessSource.GRANT)
        existing = active_entitlement(self.session, a["learner"], course.id)
        if existing is not None:
            return {"entitlement_id": existing.id, "created": False}
        mirrored = self._mirrored_entitlement(course.id, a["learner"], str(a["ref"]))
        if mirrored is not None:
            # The worker's own grantAccess of a row the database has revoked since: its
            # revokeAccess is on the way. Adopting it would bring back access that ended.
            return {"entitlement_id": mirrored.id, "created": False, "mirror_of_revoked": True}
        order = self._order_by_ref(a["ref"])
        ent = grant_access(
            self.session,
            address=a["learner"],
            course_id=course.id,
            source=source,
            order_id=order.id if order is not None else None,
            actor=ACTOR,
            reason=f"on-chain AccessGranted {lg.tx_hash}:{lg.log_index}",
            on_chain=True,
            chain_ref=str(a["ref"]).lower(),
            chain_id=self.chain_id,
        )
        return {"entitlement_id": ent.id, "created": True, "order_id": ent.order_id}

    def undo_access_granted(self, row: AppliedRow) -> None:
        if not row.effect.get("created"):
            return
        ent = self.session.get(Entitlement, row.effect["entitlement_id"])
        if ent is None or ent.revoked_at is not None:
            return
        end_order_access(
            self.session,
            address=ent.address,
            course_id=ent.course_id,
            order_id=ent.order_id,
            on_chain=True,
            actor=ACTOR,
            reason=f"{REORG}: AccessGranted {row.tx_hash}:{row.log_index} reorganized away",
        )

    def access_revoked(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        course = course_by_onchain_id(self.session, self.chain_id, a["courseId"])
        if course is None:
            return {"skipped": "unknown course"}
        active = active_entitlement(self.session, a["learner"], course.id)
        # On-chain revokeAccess only ends Card/Grant access; never touch a crypto purchase's.
        if active is None or active.source not in MIRRORED_SOURCES:
            return {"revoked": None}
        if (
            active.chain_ref is not None
            and active.chain_ref[: 2 + 42] != str(a["ref"]).lower()[: 2 + 42]
        ):
            # The revoke of an earlier record (the worker names the record it ends): the active
            # entitlement is another one, whose own grant the chain gets (or already has).
            return {"revoked": None, "other_record": active.id}
        end_order_access(
            self.session,
            address=a["learner"],
            course_id=course.id,
            order_id=active.order_id,
            on_chain=True,
            actor=ACTOR,
            reason=f"on-chain AccessRevoked {lg.tx_hash}:{lg.log_index}",
        )
        return {
            "revoked": active.id,
            "source": active.source,
            "order_id": active.order_id,
            "course_id": course.id,
            "address": active.address,
        }

    def undo_access_revoked(self, row: AppliedRow) -> None:
        e = row.effect
        if not e.get("revoked"):
            return
        grant_access(
            self.session,
            address=e["address"],
            course_id=e["course_id"],
            source=e["source"],
            order_id=e.get("order_id"),
            actor=ACTOR,
            reason=f"{REORG}: AccessRevoked {row.tx_hash}:{row.log_index} reorganized away",
            on_chain=True,
            chain_id=self.chain_id,
        )

    # ------------------------------------------------------------------ certificates

    def certificate_minted(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        course = course_by_onchain_id(self.session, self.chain_id, a["courseId"])
        if course is None:
            return {"skipped": "unknown course"}
        # The row of this token, else the pair's certificate still in the making (requested
        # here, minted by the worker or claimed); a correction or a mint after the holder's
        # removal is a new row (the pair's earlier ones are revoked or removed by then).
        cert = self._certificate(a["tokenId"]) or current_certificate_on(
            self.session, self.chain_id, course.id, a["learner"]
        )
        if cert is None:
            # Minted by an issuer the provider authorized, without a request here: mirror it.
            cert = Certificate(
                chain_id=self.chain_id,
                course_id=course.id,
                address=a["learner"],
                token_id=_int(a["tokenId"]),
                record_hash=a["recordHash"],
                record={"source": "chain", "signer": a["signer"], "recordHash": a["recordHash"]},
                mode=CertificateMode.MINT,
                status=CertificateStatus.MINTED,
                tx_hash=lg.tx_hash,
            )
            self.session.add(cert)
            self.session.flush()
            prev: dict[str, Any] | None = None
        else:
            prev = {
                "status": cert.status,
                "token_id": None if cert.token_id is None else str(cert.token_id),
                "tx_hash": cert.tx_hash,
            }
            if cert.record_hash.lower() != str(a["recordHash"]).lower():
                log.error(
                    "chain %s: certificate %d minted with record hash %s, expected %s",
                    self.chain_id,
                    cert.id,
                    a["recordHash"],
                    cert.record_hash,
                )
            cert.token_id = _int(a["tokenId"])
            cert.tx_hash = lg.tx_hash
            if cert.status != CertificateStatus.REVOKED:
                cert.status = CertificateStatus.MINTED
            self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.minted",
            subject_type="certificate",
            subject_id=cert.id,
            before=prev,
            after={"status": cert.status, "tokenId": str(cert.token_id), "txHash": lg.tx_hash},
            reason=f"CertificateMinted {lg.tx_hash}:{lg.log_index}",
        )
        return {"certificate_id": cert.id, "prev": prev}

    def undo_certificate_minted(self, row: AppliedRow) -> None:
        cert_id = row.effect.get("certificate_id")
        cert = self.session.get(Certificate, cert_id) if cert_id is not None else None
        if cert is None or cert_id is None:
            return
        prev = row.effect.get("prev")
        if prev is None:
            self.session.delete(cert)
        else:
            cert.status = prev["status"]
            cert.token_id = None if prev["token_id"] is None else int(prev["token_id"])
            cert.tx_hash = prev["tx_hash"]
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.unminted",
            subject_type="certificate",
            subject_id=cert_id,
            before=None,
            after=prev,
            reason=f"{REORG}: CertificateMinted {row.tx_hash}:{row.log_index} reorganized away",
        )

    def certificate_revoked(self, lg: DecodedLog) -> dict[str, Any]:
        cert = self._certificate(lg.args["tokenId"])
        if cert is None:
            return {"skipped": "unknown certificate"}
        prev = {"status": cert.status, "reason_code": cert.revoke_reason_code}
        cert.status = CertificateStatus.REVOKED
        cert.revoked_at = utcnow()
        cert.revoke_reason_code = int(lg.args["reason"])
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.revoked",
            subject_type="certificate",
            subject_id=cert.id,
            before=prev,
            after={"status": cert.status, "reason": lg.args["reason"], "by": lg.args["by"]},
            reason=f"CertificateRevoked {lg.tx_hash}:{lg.log_index}",
        )
        return {"certificate_id": cert.id, "prev": prev}

    def undo_certificate_revoked(self, row: AppliedRow) -> None:
        cert = self._certificate_of(row)
        if cert is None:
            return
        cert.status = row.effect["prev"]["status"]
        cert.revoked_at = None
        cert.revoke_reason_code = row.effect["prev"].get("reason_code")
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.unrevoked",
            subject_type="certificate",
            subject_id=cert.id,
            before={"status": CertificateStatus.REVOKED},
            after={"status": cert.status},
            reason=f"{REORG}: CertificateRevoked {row.tx_hash}:{row.log_index} reorganized away",
        )

    def certificate_removed(self, lg: DecodedLog) -> dict[str, Any]:
        cert = self._certificate(lg.args["tokenId"])
        if cert is None:
            return {"skipped": "unknown certificate"}
        prev = {"status": cert.status, "removed_at": _iso(cert.removed_at)}
        cert.status = CertificateStatus.REMOVED
        cert.removed_at = utcnow()
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.removed",
            subject_type="certificate",
            subject_id=cert.id,
            before=prev,
            after={"status": cert.status, "holder": lg.args["holder"]},
            reason=f"CertificateRemoved {lg.tx_hash}:{lg.log_index}",
        )
        return {"certificate_id": cert.id, "prev": prev}

    def undo_certificate_removed(self, row: AppliedRow) -> None:
        cert = self._certificate_of(row)
        if cert is None:
            return
        prev = row.effect["prev"]
        cert.status = prev["status"]
        cert.removed_at = _from_iso(prev["removed_at"])
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.unremoved",
            subject_type="certificate",
            subject_id=cert.id,
            before={"status": CertificateStatus.REMOVED},
            after={"status": cert.status},
            reason=f"{REORG}: CertificateRemoved {row.tx_hash}:{row.log_index} reorganized away",
        )

    def certificate_replaced(self, lg: DecodedLog) -> dict[str, Any]:
        cert = self._certificate(lg.args["tokenId"])
        if cert is None:
            return {"skipped": "unknown certificate"}
        prev = {"replaced_by": _str_or_none(cert.replaced_by_token_id)}
        cert.replaced_by_token_id = _int(lg.args["newTokenId"])
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.replaced",
            subject_type="certificate",
            subject_id=cert.id,
            before=prev,
            after={"replacedBy": str(cert.replaced_by_token_id)},
            reason=f"CertificateReplaced {lg.tx_hash}:{lg.log_index}",
        )
        return {"certificate_id": cert.id, "prev": prev}

    def undo_certificate_replaced(self, row: AppliedRow) -> None:
        cert = self._certificate_of(row)
        if cert is None:
            return
        previous = row.effect["prev"]["replaced_by"]
        cert.replaced_by_token_id = None if previous is None else int(previous)
        self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="certificate.unreplaced",
            subject_type="certificate",
            subject_id=cert.id,
            before={"replacedBy": row.args["newTokenId"]},
            after={"replacedBy": previous},
            reason=f"{REORG}: CertificateReplaced {row.tx_hash}:{row.log_index} reorganized away",
        )

    def _certificate(self, token_id: Any) -> Certificate | None:
        # Token ids are per chain: the same id on another chain is another certificate.
        return self.session.scalar(
            select(Certificate).where(
                Certificate.chain_id == self.chain_id, Certificate.token_id == _int(token_id)
            )
        )

    def _certificate_of(self, row: AppliedRow) -> Certificate | None:
        cert_id = row.effect.get("certificate_id")
        return self.session.get(Certificate, cert_id) if cert_id is not None else None

    # ------------------------------------------------------------------ provider records

    def provider_profile_set(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        profile = self.session.get(ProviderProfile, (self.chain_id, a["provider"]))
        prev = None if profile is None else _profile_state(profile)
        if profile is None:
            profile = ProviderProfile(chain_id=self.chain_id, address=a["provider"])
            self.session.add(profile)
        profile.name = a["name"]
        profile.domain = a["domain"]
        profile.profile_hash = profile_hash(a["name"], a["domain"])
        # Setting a record drops the platform's verification (the contract does the same).
        profile.verified, profile.verified_at, profile.verified_by = False, None, None
        profile.block_number, profile.tx_hash = lg.block_number, lg.tx_hash
        self.session.flush()
        self._audit_config(
            lg, "provider.profile_set", "provider", a["provider"], prev, _profile_state(profile)
        )
        return {"provider": a["provider"], "prev": prev}

    def provider_verification_set(self, lg: DecodedLog) -> dict[str, Any]:
        a = lg.args
        profile = self.session.get(ProviderProfile, (self.chain_id, a["provider"]))
        if profile is None:
            return {"skipped": "no provider record"}  # unverifying a provider without one
        prev = _profile_state(profile)
        profile.verified = bool(a["verified"])
        profile.verified_at = utcnow() if profile.verified else None
        profile.verified_by = a["by"] if profile.verified else None
        profile.block_number, profile.tx_hash = lg.block_number, lg.tx_hash
        self.session.flush()
        action = "provider.verified" if profile.verified else "provider.unverified"
        self._audit_config(lg, action, "provider", a["provider"], prev, _profile_state(profile))
        return {"provider": a["provider"], "prev": prev}

    def undo_provider_record(self, row: AppliedRow) -> None:
        if row.effect.get("skipped"):
            return
        address = row.effect["provider"]
        profile = self.session.get(ProviderProfile, (self.chain_id, address))
        prev = row.effect["prev"]
        if profile is not None:
            if prev is None:
                self.session.delete(profile)
            else:
                _set_profile_state(profile, prev)
            self.session.flush()
        audit(
            self.session,
            actor=ACTOR,
            action="provider.record_reverted",
            subject_type="provider",
            subject_id=address,
            before=None,
            after=prev,
            reason=f"{REORG}: {row.event} {row.tx_hash}:{row.log_index} reorganized away",
        )


def _course_state(course: Course, chain_id: int) -> dict[str, Any]:
    # What chain `chain_id`'s course events change: the registration there, the refund window.
    reg = course.registration(chain_id)
    return {
        "onchain_id": None if reg is None else reg.onchain_id,
        "listed_onchain": None if reg is None else reg.listed,
        "refund_window": course.refund_window,
        "onchain_block": None if reg is None else reg.block,
    }


def _set_course_state(course: Course, chain_id: int, state: Mapping[str, Any]) -> None:
    course.refund_window = int(state.get("refund_window") or 0)
    if (reg := course.registration(chain_id)) is not None:
        reg.listed = state.get("listed_onchain")
        reg.block = state.get("onchain_block")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _str_or_none(value: int | None) -> str | None:
    return None if value is None else str(value)


def _profile_state(profile: ProviderProfile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "domain": profile.domain,
        "profile_hash": profile.profile_hash,
        "verified": profile.verified,
        "verified_at": _iso(profile.verified_at),
        "verified_by": profile.verified_by,
        "block_number": profile.block_number,
        "tx_hash": profile.tx_hash,
    }


def _set_profile_state(profile: ProviderProfile, state: Mapping[str, Any]) -> None:
    profile.name = state["name"]
    profile.domain = state["domain"]
    profile.profile_hash = state["profile_hash"]
    profile.verified = state["verified"]
    profile.verified_at = _from_iso(state["verified_at"])
    profile.verified_by = state["verified_by"]
    profile.block_number = state["block_number"]
    profile.tx_hash = state["tx_hash"]
