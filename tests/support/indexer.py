"""Helpers shared by the indexer tests: building indexers, recording sinks, a faulty RPC."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.config import IndexerSettings
from indexer.decoding import DecodedLog
from indexer.engine import Indexer
from indexer.heads import HeadWatcher
from indexer.models import IndexerAppliedLog
from indexer.rpc import RpcClient
from indexer.sink import BatchContext, EffectSink, NullSink, SinkBatch
from indexer.store import AppliedRow


class RecordingSink:
    """Records applies and undos in memory (engine-level tests)."""

    def __init__(self, levels: Mapping[str, int] | None = None) -> None:
        self.levels = dict(levels or {})
        self.applied: list[DecodedLog] = []
        self.undone: list[AppliedRow] = []
        self.confirmed: list[tuple[str, int, int]] = []
        self.batches = 0

    def open(self, session: Session, ctx: BatchContext) -> SinkBatch:
        self.batches += 1
        return _RecordingBatch(self)

    def confirm(self, session: Session, chain_id: int, level: str, first: int, last: int) -> None:
        self.confirmed.append((level, first, last))


class _RecordingBatch:
    def __init__(self, sink: RecordingSink) -> None:
        self.sink = sink
        self.pending_applied: list[DecodedLog] = []
        self.pending_undone: list[AppliedRow] = []

    def undo(self, rows: Sequence[AppliedRow]) -> None:
        self.pending_undone.extend(rows)

    def apply(self, logs: Sequence[DecodedLog]) -> list[dict[str, Any]]:
        self.pending_applied.extend(logs)
        return [{"n": len(self.sink.applied) + i} for i in range(len(logs))]

    def close(self) -> None:
        # Only effective once the engine commits; good enough for in-process tests where a
        # commit failure fails the test anyway.
        self.sink.applied.extend(self.pending_applied)
        self.sink.undone.extend(self.pending_undone)


class FaultyTransport(httpx.BaseTransport):
    """Forwards JSON-RPC to a node, but refuses eth_getLogs ranges at random like real providers.

    Also counts requests and can hide logs of number-range queries near the head (a lagging
    load-balanced node).
    """

    ERRORS = (
        {"code": -32005, "message": "query returned more than 10000 results"},
        {
            "code": -32602,
            "message": "Log response size exceeded. Try with this block range [0x0, 0x1]",
        },
        {"code": -32000, "message": "block range is too wide"},
        {"code": -32000, "message": "too many results, max 5 blocks"},
    )

    def __init__(
        self,
        *,
        failure_rate: float = 0.0,
        max_span: int | None = None,
        seed: int = 7,
        hide_near_head: int | None = None,
        head: Callable[[], int] | None = None,
    ) -> None:
        self.inner = httpx.HTTPTransport()
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.max_span = max_span
        self.hide_near_head = hide_near_head
        self.head = head
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.refused = 0
        self.number_ranges: list[tuple[int, int]] = []

    def _refuse(self, call: dict[str, Any]) -> dict[str, Any] | None:
        if call.get("method") != "eth_getLogs":
            return None
        flt = call["params"][0]
        if "fromBlock" not in flt:
            return None
        start, end = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
        with self.lock:
            self.number_ranges.append((start, end))
            too_wide = self.max_span is not None and end - start + 1 > self.max_span
            if too_wide or (end > start and self.rng.random() < self.failure_rate):
                self.refused += 1
                error = self.ERRORS[self.rng.randrange(len(self.ERRORS))]
                return {"jsonrpc": "2.0", "id": call["id"], "error": error}
        return None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.read())
        calls = body if isinstance(body, list) else [body]
        with self.lock:
            for c in calls:
                self.calls[c["method"]] = self.calls.get(c["method"], 0) + 1
        refusals = {c["id"]: r for c in calls if (r := self._refuse(c)) is not None}
        response = self.inner.handle_request(
            httpx.Request(
                request.method, request.url, headers=request.headers, content=orjson.dumps(body)
            )
        )
        response.read()
        answers = orjson.loads(response.content)
        single = not isinstance(answers, list)
        answers = [answers] if single else answers
        if self.hide_near_head is not None and self.head is not None:
            head = self.head()
            by_id = {c["id"]: c for c in calls}
            for a in answers:
                call = by_id.get(a.get("id"))
                by_number = (
                    call and call["method"] == "eth_getLogs" and "fromBlock" in (call["params"][0])
                )
                if by_number and isinstance(a.get("result"), list):
                    a["result"] = [
                        lg
                        for lg in a["result"]
                        if int(lg["blockNumber"], 16) <= head - self.hide_near_head
                    ]
        answers = [refusals.get(a.get("id"), a) for a in answers]
        content = orjson.dumps(answers[0] if single else answers)
        return httpx.Response(200, content=content, headers={"content-type": "application/json"})


def make_indexer(
    db: Any,
    node: Any,
    addresses: Sequence[str],
    start_block: int,
    *,
    sink: EffectSink | None = None,
    transport: httpx.BaseTransport | None = None,
    ws: bool = False,
    chain_id: int | None = None,
    stream: str | None = None,
    rpc_url: str | None = None,
    **settings: Any,
) -> Indexer:
    """An Indexer on a test node (read at `rpc_url` when given: a proxy) and database."""
    defaults: dict[str, Any] = {"poll_interval": 0.02, "confirmations": 2}
    defaults.update(settings)
    ixs = IndexerSettings(**defaults)
    return Indexer(
        rpc=RpcClient(rpc_url or node.url, transport=transport, retries=2, backoff=0.05),
        session_factory=db.sessions,
        sink=sink or NullSink(),
        chain_id=chain_id or node.chain_id,
        stream=stream or f"test:{addresses[0].lower()}",
        addresses=addresses,
        start_block=start_block,
        settings=ixs,
        heads=HeadWatcher(node.ws_url if ws else None, poll_interval=ixs.poll_interval),
    )


def applied_count(db: Any, event: str | None = None, chain_id: int | None = None) -> int:
    """Applied-log rows (optionally of one event / chain)."""
    q = select(func.count()).select_from(IndexerAppliedLog)
    if event:
        q = q.where(IndexerAppliedLog.event == event)
    if chain_id is not None:
        q = q.where(IndexerAppliedLog.chain_id == chain_id)
    with db.sessions() as s:
        return int(s.scalar(q) or 0)


def duplicate_keys(db: Any) -> int:
    """Applied logs sharing (chain, tx hash, log index): must be zero."""
    with db.sessions() as s:
        sub = (
            select(
                IndexerAppliedLog.chain_id, IndexerAppliedLog.tx_hash, IndexerAppliedLog.log_index
            )
            .group_by(
                IndexerAppliedLog.chain_id, IndexerAppliedLog.tx_hash, IndexerAppliedLog.log_index
            )
            .having(func.count() > 1)
            .subquery()
        )
        return int(s.scalar(select(func.count()).select_from(sub)) or 0)


class Runner:
    """Runs an Indexer in a thread (live mode) for the duration of a test."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.indexer.run(self.stop)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Runner:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=20)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until predicate() holds (re-raising the indexer's error if it died)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise self.error
            if predicate():
                return
            time.sleep(0.01)
        if self.error is not None:
            raise self.error
        raise TimeoutError("condition not reached")

    def wait_block(self, number: int, timeout: float = 20.0) -> None:
        """Wait until the checkpoint reaches `number`."""
        self.wait_for(
            lambda: self.indexer.cp is not None and self.indexer.cp.number >= number, timeout
        )


# ---------------------------------------------------------------------- backend state


def backend_sink(chain_id: int, **kwargs: Any) -> EffectSink:
    """The real sink (the backend's services)."""
    from indexer.handlers import BackendSink

    kwargs.setdefault("confirmations", 3)
    return BackendSink(chain_id=chain_id, **kwargs)


def entitlements(db: Any) -> list[Any]:
    """All entitlement rows, oldest first."""
    from backend.access.models import Entitlement

    with db.sessions() as s:
        return list(s.scalars(select(Entitlement).order_by(Entitlement.id)).all())


def active_entitlements(db: Any) -> dict[tuple[int, str], int]:
    """(course id, address) -> number of ACTIVE entitlements."""
    out: dict[tuple[int, str], int] = {}
    for e in entitlements(db):
        if e.revoked_at is None:
            out[(e.course_id, e.address)] = out.get((e.course_id, e.address), 0) + 1
    return out


def orders(db: Any) -> list[Any]:
    """All order rows."""
    from backend.orders.models import Order

    with db.sessions() as s:
        return list(s.scalars(select(Order).order_by(Order.created_at, Order.id)).all())


def course_id_of(db: Any, onchain_id: int, chain_id: int = 31337) -> int:
    """The database id of the course linked to an on-chain id of `chain_id`."""
    from backend.catalog.models import CourseChain

    with db.sessions() as s:
        cid = s.scalar(
            select(CourseChain.course_id).where(
                CourseChain.chain_id == chain_id, CourseChain.onchain_id == onchain_id
            )
        )
        assert cid is not None, f"course {onchain_id} not linked"
        return int(cid)
