"""The transaction sender of a worker key (the operator/issuer hot wallet).

Guarantees:

- Idempotent: every send has a caller-chosen key; a second `send()` with the same key returns
  the first transaction instead of sending another.
- Recorded before broadcast: the nonce is allocated, the transaction signed and both written in
  one DB transaction before anything reaches the node, so a crash at any instant leaves either
  nothing or a row the next run (or `recover()`) re-broadcasts verbatim.
- One nonce, one live transaction: allocation happens under a lock on the key's `worker_nonces`
  row (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite the first statement is a write, which
  takes the database's single write lock), and a unique (chain, sender, nonce) constraint backs
  it, whatever number of processes and threads send at once.
- Recovery: a transaction the node no longer knows (dropped) is re-broadcast; one without a
  receipt after `stuck_after` seconds is re-signed with the same nonce and bumped fees; one whose
  nonce the chain used for something else is re-signed under a fresh nonce. The allocator
  re-syncs with `eth_getTransactionCount(pending)` whenever the chain is ahead of the DB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception, Web3RPCError

from backend.core.config import WorkerSettings, get_settings
from backend.core.db import session_scope, utcnow
from backend.core.errors import (
    ChainUnavailableError,
    TxNotMinedError,
    TxRevertedError,
    TxWouldRevertError,
)
from backend.worker import metrics
from backend.worker.models import TxStatus, WorkerNonce, WorkerTransaction, WorkerTxAttempt

log = logging.getLogger(__name__)

GAS_MARGIN_PERCENT = 20  # estimates move with state; a short gas limit wastes the whole fee
MIN_BUMP_PERCENT = 10  # geth and most nodes refuse a replacement below +10 % on both fees

# Errors from transports (node down, connection reset, timeouts) that a later retry may cure.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    ConnectionError,
    TimeoutError,
    OSError,
)


@dataclass(frozen=True)
class SentTx:
    """A snapshot of a `WorkerTransaction` row, safe to pass between sessions."""

    id: int
    key: str
    nonce: int
    tx_hash: str
    status: str
    block_number: int | None = None

    @classmethod
    def of(cls, row: WorkerTransaction) -> SentTx:
        """Snapshot `row`."""
        return cls(row.id, row.key, row.nonce, row.tx_hash, row.status, row.block_number)

    @property
    def mined(self) -> bool:
        """Mined with status 1."""
        return self.status == TxStatus.MINED


def _message(exc: Web3RPCError) -> str:
    response = exc.rpc_response or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"]).lower()
    return str(exc).lower()


def classify_send_error(exc: Web3RPCError) -> str:
    """Map a node's refusal of eth_sendRawTransaction to what the sender does next.

    Returns "known" (the node already has it: fine), "nonce_too_low" (the nonce is used up),
    "underpriced" (another transaction holds the nonce at a higher fee) or "other".
    """
    msg = _message(exc)
    if "already known" in msg or "already imported" in msg or "known transaction" in msg:
        return "known"
    if "nonce too low" in msg or "nonce is too low" in msg or "oldnonce" in msg:
        return "nonce_too_low"
    if "underpriced" in msg:
        return "underpriced"
    return "other"


def _operation_keys(base: str) -> Any:
    """`base` and its later attempts `base#2`, `base#3`..."""
    return (WorkerTransaction.key == base) | WorkerTransaction.key.startswith(
        base + "#", autoescape=True
    )


def _bumped(value: int, percent: int) -> int:
    return value * (100 + percent) // 100 + 1


class TxSender:
    """Sends contract calls from one key with DB-tracked nonces (see the module docstring)."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        session_factory: sessionmaker[Session],
        *,
        chain_id: int | None = None,
        settings: WorkerSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.factory = session_factory
        self.settings = settings or get_settings().worker
        self._chain_id = chain_id
        self._sleep = sleep

    # ------------------------------------------------------------------ public API

    @property
    def chain_id(self) -> int:
        """The node's chain id (asked once)."""
        if self._chain_id is None:
            self._chain_id = int(self._rpc(lambda: self.w3.eth.chain_id))
        return self._chain_id

    def get(self, key: str) -> SentTx | None:
        """The transaction recorded under `key`, if any."""
        with session_scope(self.factory) as s:
            row = self._by_key(s, key)
            return SentTx.of(row) if row else None

    def fresh_key(self, base: str) -> str:
        """The key for the next attempt at operation `base`: `base`, `base#2`, `base#3`...

        The key of a transaction still in flight is reused (the caller then waits for it); once
        every earlier attempt is settled (mined or reverted), a new key lets the operation be
        sent again. Callers check the chain state first, so a settled attempt whose effect is
        still in place never gets here.
        """
        with session_scope(self.factory) as s:
            rows = s.execute(
                select(WorkerTransaction.key, WorkerTransaction.status).where(
                    WorkerTransaction.chain_id == self.chain_id,
                    _operation_keys(base),
                )
            ).all()
        if not rows:
            return base
        for key, status in rows:
            if status in TxStatus.LIVE:
                return str(key)
        return f"{base}#{len(rows) + 1}"

    def settle_operation(self, base: str) -> list[SentTx]:
        """Check the live attempts of operation `base` once (when the effect was found on-chain,
        so the rows do not wait for the next `recover`)."""
        with session_scope(self.factory) as s:
            ids = s.scalars(
                select(WorkerTransaction.id).where(
                    WorkerTransaction.chain_id == self.chain_id,
                    _operation_keys(base),
                    WorkerTransaction.status.in_(TxStatus.LIVE),
                )
            ).all()
        return [self.check(tx_id) for tx_id in ids]

    def send(
        self, key: str, to: str, data: str, *, value: int = 0, gas: int | None = None
    ) -> SentTx:
        """Send `data` to `to` once per `key`; returns the recorded transaction.

        Raises:
            TxWouldRevertError: gas estimation reverted (no nonce was used).
            ChainUnavailableError: the node could not be reached; safe to call again.
        """
        existing = self.get(key)
        if existing is not None:
            if existing.status in TxStatus.LIVE:
                return self._ensure_broadcast(existing.id)
            return existing
        to = Web3.to_checksum_address(to)
        if gas is None:
            gas = self._estimate_gas(to, data, value)
        max_fee, priority = self._fees()
        # Asked before taking the lock: a value that is stale by then is only ever lower than the
        # truth, and the DB counter already accounts for every nonce this key handed out.
        chain_pending = self._pending_count()
        for attempt in range(3):
            try:
                tx_id = self._allocate_and_record(
                    key, to, data, value, gas, max_fee, priority, chain_pending
                )
                break
            except IntegrityError:
                existing = self.get(key)
                if existing is not None:
                    # Another process recorded the same key first: theirs is the one.
                    if existing.status in TxStatus.LIVE:
                        return self._ensure_broadcast(existing.id)
                    return existing
                # Two first-ever allocations for this key raced to create the counter row.
                if attempt == 2:
                    raise
        return self._ensure_broadcast(tx_id)

    def wait(self, tx: SentTx | int, timeout: float | None = None, poll: float = 0.2) -> SentTx:
        """Wait for a receipt of any attempt of `tx`; mark the row mined or reverted.

        Raises:
            TxNotMinedError: no receipt within `timeout` (the transaction stays pending).
            TxRevertedError: mined with status 0.
        """
        tx_id = tx if isinstance(tx, int) else tx.id
        timeout = self.settings.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            settled = self.check(tx_id)
            if settled.status == TxStatus.REVERTED:
                raise TxRevertedError(settled.tx_hash)
            if settled.status == TxStatus.MINED:
                return settled
            if time.monotonic() >= deadline:
                raise TxNotMinedError(settled.tx_hash, settled.nonce)
            self._sleep(poll)
            poll = min(poll * 1.5, 2.0)

    def check(self, tx_id: int) -> SentTx:
        """Look for a receipt of any attempt of `tx_id` once; settle the row if there is one."""
        with session_scope(self.factory) as s:
            row = s.get(WorkerTransaction, tx_id)
            if row is None:
                raise KeyError(tx_id)
            if row.status not in TxStatus.LIVE:
                return SentTx.of(row)
            hashes = [a.tx_hash for a in reversed(row.attempts)]
        receipt = self._find_receipt(hashes)
        if receipt is None:
            return self._snapshot(tx_id)
        if self.settings.confirmations:
            head = self._rpc(lambda: self.w3.eth.block_number)
            if head - int(receipt["blockNumber"]) < self.settings.confirmations:
                return self._snapshot(tx_id)
        return self._settle(tx_id, receipt)

    def recover(self) -> dict[str, int]:
        """Settle, re-broadcast, re-price or re-nonce every live transaction of this key.

        Called periodically (beat) and before a task gives up waiting; safe to run concurrently.
        Returns counters of what it did.
        """
        done = {"settled": 0, "rebroadcast": 0, "bumped": 0, "renonced": 0}
        with session_scope(self.factory) as s:
            ids = s.scalars(
                select(WorkerTransaction.id)
                .where(
                    WorkerTransaction.chain_id == self.chain_id,
                    WorkerTransaction.sender == self.address,
                    WorkerTransaction.status.in_(TxStatus.LIVE),
                )
                .order_by(WorkerTransaction.nonce)
            ).all()
        if not ids:
            return done
        latest = self._rpc(lambda: self.w3.eth.get_transaction_count(self.address, "latest"))
        stuck_before = utcnow() - timedelta(seconds=self.settings.stuck_after)
        for tx_id in ids:
            tx = self.check(tx_id)
            if tx.status not in TxStatus.LIVE:
                done["settled"] += 1
                continue
            if tx.nonce < latest:
                # The nonce is used up but none of our attempts has a receipt: the key was used
                # elsewhere. Our call never happened, so it goes out again under a fresh nonce.
                self._renonce(tx_id, tx.nonce)
                done["renonced"] += 1
                continue
            row = self._load(tx_id)
            if row.attempted_at <= stuck_before:
                self._bump(tx_id, attempted_before=stuck_before)
                done["bumped"] += 1
            elif not self._node_knows(tx.tx_hash):
                self._broadcast_latest(tx_id)
                done["rebroadcast"] += 1
        if any(done.values()):
            log.info("sender %s recovery: %s", self.address, done)
        return done

    def in_flight(self) -> int:
        """How many transactions of this key are recorded but not settled."""
        with session_scope(self.factory) as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(WorkerTransaction)
                    .where(
                        WorkerTransaction.chain_id == self.chain_id,
                        WorkerTransaction.sender == self.address,
                        WorkerTransaction.status.in_(TxStatus.LIVE),
                    )
                )
                or 0
            )

    def oldest_in_flight(self) -> datetime | None:
        """When the oldest unsettled transaction of this key was signed (None: there is none)."""
        with session_scope(self.factory) as s:
            return s.scalar(
                select(func.min(WorkerTransaction.created_at)).where(
                    WorkerTransaction.chain_id == self.chain_id,
                    WorkerTransaction.sender == self.address,
                    WorkerTransaction.status.in_(TxStatus.LIVE),
                )
            )

    # ------------------------------------------------------------------ allocation

    def _lock_counter(self, s: Session) -> WorkerNonce | None:
        """Take the key's nonce lock for the rest of `s`'s transaction; the row if it exists."""
        where = (WorkerNonce.chain_id == self.chain_id, WorkerNonce.sender == self.address)
        # A write first: on SQLite it takes the database's write lock right away (a read first
        # could later fail to upgrade); on PostgreSQL it row-locks like FOR UPDATE.
        s.execute(update(WorkerNonce).where(*where).values(updated_at=utcnow()))
        return s.scalars(select(WorkerNonce).where(*where).with_for_update()).one_or_none()

    def _allocate_and_record(
        self,
        key: str,
        to: str,
        data: str,
        value: int,
        gas: int,
        max_fee: int,
        priority: int,
        chain_pending: int,
    ) -> int:
        with session_scope(self.factory) as s:
            counter = self._lock_counter(s)
            if counter is None:
                counter = WorkerNonce(
                    chain_id=self.chain_id, sender=self.address, next_nonce=chain_pending
                )
                s.add(counter)
                # Two first-ever senders race here: the loser's flush fails and `send` retries,
                # by which time the row exists and is locked properly.
                s.flush()
            nonce = self._next_nonce(counter, chain_pending)
            signed_raw, tx_hash = self._sign(nonce, to, data, value, gas, max_fee, priority)
            row = WorkerTransaction(
                chain_id=self.chain_id,
                sender=self.address,
                key=key,
                nonce=nonce,
                to_address=to,
                data=data,
                value=value,
                gas=gas,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=priority,
                tx_hash=tx_hash,
                status=TxStatus.SIGNED,
                attempted_at=utcnow(),
            )
            row.attempts.append(
                WorkerTxAttempt(
                    tx_hash=tx_hash,
                    nonce=nonce,
                    max_fee_per_gas=max_fee,
                    max_priority_fee_per_gas=priority,
                    raw=signed_raw,
                )
            )
            s.add(row)
            counter.next_nonce = nonce + 1
            s.flush()
            log.info("tx %s: nonce %d, hash %s recorded", key, nonce, tx_hash)
            return row.id

    def _next_nonce(self, counter: WorkerNonce, chain_pending: int) -> int:
        if chain_pending > counter.next_nonce:
            # The chain is ahead: the key was used outside this DB (or the DB was restored).
            log.warning(
                "nonce of %s re-synced from the chain: %d -> %d",
                self.address,
                counter.next_nonce,
                chain_pending,
            )
            metrics.NONCE_RESYNCS.inc()
            return chain_pending
        # The chain may be behind (transactions not yet seen, or dropped): keep ours; `recover`
        # re-broadcasts what the node lost.
        return counter.next_nonce

    def _renonce(self, tx_id: int, stale_nonce: int) -> None:
        chain_pending = self._pending_count()
        max_fee, priority = self._fees()
        with session_scope(self.factory) as s:
            counter = self._lock_counter(s)
            row = s.get(WorkerTransaction, tx_id)
            if row is None or row.status not in TxStatus.LIVE or counter is None:
                return
            if row.nonce != stale_nonce:
                return  # another process re-nonced it meanwhile
            nonce = self._next_nonce(counter, chain_pending)
            self._add_attempt(row, nonce, max_fee, priority)
            counter.next_nonce = nonce + 1
            log.warning(
                "tx %s: nonce %d was used elsewhere, re-sent as %d", row.key, row.nonce, nonce
            )
            row.nonce = nonce
        metrics.TX_RESENT.labels(reason="renonce").inc()
        self._broadcast_latest(tx_id)

    # ------------------------------------------------------------------ signing and broadcast

    def _sign(
        self, nonce: int, to: str, data: str, value: int, gas: int, max_fee: int, priority: int
    ) -> tuple[str, str]:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "data": data,
            "value": value,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority,
        }
        signed = self.account.sign_transaction(tx)
        return signed.raw_transaction.to_0x_hex(), signed.hash.to_0x_hex()

    def _add_attempt(self, row: WorkerTransaction, nonce: int, max_fee: int, priority: int) -> None:
        raw, tx_hash = self._sign(
            nonce, row.to_address, row.data, row.value, row.gas, max_fee, priority
        )
        row.attempts.append(
            WorkerTxAttempt(
                tx_hash=tx_hash,
                nonce=nonce,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=priority,
                raw=raw,
            )
        )
        row.tx_hash = tx_hash
        row.max_fee_per_gas = max_fee
        row.max_priority_fee_per_gas = priority
        row.attempted_at = utcnow()

    def _ensure_broadcast(self, tx_id: int) -> SentTx:
        row = self._load(tx_id)
        if row.status == TxStatus.SIGNED or (
            row.status == TxStatus.PENDING and not self._node_knows(row.tx_hash)
        ):
            return self._broadcast_latest(tx_id)
        return SentTx.of(row)

    def _broadcast_latest(self, tx_id: int, *, _depth: int = 0) -> SentTx:
        with session_scope(self.factory) as s:
            row = s.get(WorkerTransaction, tx_id)
            if row is None:
                raise KeyError(tx_id)
            raw = HexStr(row.attempts[-1].raw)
            key = row.key
        try:
            self._rpc(lambda: self.w3.eth.send_raw_transaction(raw))
            outcome = "accepted"
        except Web3RPCError as exc:
            outcome = classify_send_error(exc)
            if outcome == "other":
                raise ChainUnavailableError(f"broadcast of {key} refused: {exc}") from exc
        if outcome in ("accepted", "known"):
            with session_scope(self.factory) as s:
                s.execute(
                    update(WorkerTransaction)
                    .where(
                        WorkerTransaction.id == tx_id,
                        WorkerTransaction.status.in_(TxStatus.LIVE),
                    )
                    .values(
                        status=TxStatus.PENDING,
                        broadcasts=WorkerTransaction.broadcasts + 1,
                        updated_at=utcnow(),
                    )
                )
            metrics.TX_SENT.inc()
            return self._snapshot(tx_id)
        if _depth >= 3:
            raise ChainUnavailableError(f"broadcast of {key} keeps failing: {outcome}")
        if outcome == "nonce_too_low":
            settled = self.check(tx_id)
            if settled.status not in TxStatus.LIVE:
                return settled
            self._renonce(tx_id, settled.nonce)
            return self._snapshot(tx_id)
        # underpriced: something holds our nonce at a higher price (an attempt of ours the DB
        # lost track of, or a foreign transaction): out-bid it.
        self._bump(tx_id, broadcast=False)
        return self._broadcast_latest(tx_id, _depth=_depth + 1)

    def _bump(
        self, tx_id: int, *, broadcast: bool = True, attempted_before: datetime | None = None
    ) -> None:
        base_fee, suggested_priority = self._fee_inputs()
        with session_scope(self.factory) as s:
            row = s.get(WorkerTransaction, tx_id, with_for_update=True)
            if row is None or row.status not in TxStatus.LIVE:
                return
            if attempted_before is not None and row.attempted_at > attempted_before:
                return  # re-priced by another process meanwhile
            bump = max(self.settings.fee_bump_percent, MIN_BUMP_PERCENT)
            priority = max(_bumped(row.max_priority_fee_per_gas, bump), suggested_priority)
            max_fee = max(_bumped(row.max_fee_per_gas, bump), 2 * base_fee + priority)
            cap = self.settings.max_fee_per_gas_cap
            if max_fee > cap:
                max_fee = cap
                priority = min(priority, cap)
                if max_fee < _bumped(row.max_fee_per_gas, MIN_BUMP_PERCENT - 1):
                    log.error(
                        "tx %s is stuck at the fee cap (%d wei): not re-pricing", row.key, cap
                    )
                    return
            self._add_attempt(row, row.nonce, max_fee, priority)
            log.warning(
                "tx %s (nonce %d) re-priced to %d/%d wei: %s",
                row.key,
                row.nonce,
                max_fee,
                priority,
                row.tx_hash,
            )
        metrics.TX_RESENT.labels(reason="bump").inc()
        if broadcast:
            self._broadcast_latest(tx_id)

    # ------------------------------------------------------------------ receipts

    def _find_receipt(self, hashes: list[str]) -> Any | None:
        for tx_hash in hashes:
            try:
                return self._rpc(partial(self.w3.eth.get_transaction_receipt, HexStr(tx_hash)))
            except TransactionNotFound:
                continue
        return None

    def _settle(self, tx_id: int, receipt: Any) -> SentTx:
        mined_hash = receipt["transactionHash"].to_0x_hex()
        ok = int(receipt["status"]) == 1
        with session_scope(self.factory) as s:
            row = s.get(WorkerTransaction, tx_id)
            if row is None:
                raise KeyError(tx_id)
            if row.status in TxStatus.LIVE:
                row.status = TxStatus.MINED if ok else TxStatus.REVERTED
                row.tx_hash = mined_hash
                row.block_number = int(receipt["blockNumber"])
                row.gas_used = int(receipt["gasUsed"])
                row.mined_at = utcnow()
                if not ok:
                    row.error = "reverted"
                metrics.TX_MINED.labels(status=row.status).inc()
            return SentTx.of(row)

    def _node_knows(self, tx_hash: str) -> bool:
        try:
            self._rpc(lambda: self.w3.eth.get_transaction(HexStr(tx_hash)))
        except TransactionNotFound:
            return False
        return True

    # ------------------------------------------------------------------ chain helpers

    def _estimate_gas(self, to: str, data: str, value: int) -> int:
        try:
            estimate = self._rpc(
                lambda: self.w3.eth.estimate_gas(
                    {"from": self.address, "to": to, "data": data, "value": value}  # type: ignore[typeddict-item]
                )
            )
        except ContractLogicError as exc:
            raise TxWouldRevertError(f"call to {to} would revert: {exc}") from exc
        return int(estimate) * (100 + GAS_MARGIN_PERCENT) // 100

    def _fee_inputs(self) -> tuple[int, int]:
        block = self._rpc(lambda: self.w3.eth.get_block("latest"))
        base_fee = int(block.get("baseFeePerGas") or 0)
        try:
            priority = int(self._rpc(lambda: self.w3.eth.max_priority_fee))
        except (Web3RPCError, ChainUnavailableError):
            priority = 10**9
        return base_fee, priority

    def _fees(self) -> tuple[int, int]:
        base_fee, priority = self._fee_inputs()
        # Twice the base fee survives six full blocks of base-fee increases.
        max_fee = min(2 * base_fee + priority, self.settings.max_fee_per_gas_cap)
        return max_fee, min(priority, max_fee)

    def _pending_count(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.get_transaction_count(self.address, "pending")))

    def _rpc(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (ContractLogicError, TransactionNotFound, Web3RPCError):
            raise
        except TRANSPORT_ERRORS as exc:
            metrics.RPC_ERRORS.inc()
            raise ChainUnavailableError(f"node unreachable: {exc}") from exc
        except Web3Exception as exc:
            metrics.RPC_ERRORS.inc()
            raise ChainUnavailableError(f"node error: {exc}") from exc

    # ------------------------------------------------------------------ DB helpers

    def _by_key(self, s: Session, key: str) -> WorkerTransaction | None:
        return s.scalars(
            select(WorkerTransaction).where(
                WorkerTransaction.chain_id == self.chain_id, WorkerTransaction.key == key
            )
        ).one_or_none()

    def _load(self, tx_id: int) -> WorkerTransaction:
        with session_scope(self.factory) as s:
            row = s.get(WorkerTransaction, tx_id)
            if row is None:
                raise KeyError(tx_id)
            s.expunge(row)
            return row

    def _snapshot(self, tx_id: int) -> SentTx:
        return SentTx.of(self._load(tx_id))


def age(moment: datetime) -> float:
    """Seconds since `moment`."""
    return (utcnow() - moment).total_seconds()
