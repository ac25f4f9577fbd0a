"""Multi-row writes inside the caller's transaction: COPY on PostgreSQL, executemany on SQLite.

The ORM (and even Core executemany on psycopg, one pipelined statement per row) costs tens of
microseconds per row; a backfill writes several rows per event. Values go through the columns'
own bind processors, so what lands in the table is exactly what the ORM would have written
(zero-padded amounts on SQLite, the same timestamp format, JSON via the engine's serializer).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any

import orjson
from sqlalchemy import Table, text
from sqlalchemy.orm import Session

_NOTHING = object()
# Up to this many rows, one INSERT statement (one round trip) beats COPY on PostgreSQL (psycopg
# parses a statement with many placeholders slowly).
SMALL = 4
_JSON_TYPES = ("JSON", "JSONB", "_PGJSON", "_PGJSONB", "_SQliteJson")
# (dialect, table, columns) -> per-column bind processors; types never change at run time.
_PROCESSORS: dict[tuple[str, str, tuple[str, ...]], list[Any]] = {}


class BulkWriter:
    """Bulk inserts and id reservation on one session's connection."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.connection = session.connection()
        self.dialect = self.connection.dialect
        self.is_pg = self.dialect.name == "postgresql"

    def _column_processors(self, table: Table, columns: Sequence[str]) -> list[Any]:
        key = (self.dialect.name, table.name, tuple(columns))
        procs = _PROCESSORS.get(key)
        if procs is None:
            procs = []
            for name in columns:
                impl = table.c[name].type.dialect_impl(self.dialect)
                if self.is_pg and type(impl).__name__ in _JSON_TYPES:
                    # COPY parses JSON text itself; skip the driver's Jsonb wrapper.
                    procs.append(_json_text)
                else:
                    procs.append(impl.bind_processor(self.dialect))
            _PROCESSORS[key] = procs
        return procs

    def insert(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        count: int | None = None,
        trusted: bool = False,
    ) -> int:
        """Insert rows (tuples in `columns` order); returns how many.

        `rows` may be a generator: on PostgreSQL it is consumed while COPY streams, so the server
        indexes the first rows while the later ones are still being built. `count` (or `len`)
        picks the statement; without either the rows are taken to be many. `trusted`: the values
        are already what the columns' bind processors would return on PostgreSQL (checked ints,
        aware UTC datetimes), so only JSON is serialized there (each processor is Python code
        run per cell; the row-by-row comparison with the ORM path in the tests holds either way).
        """
        if count is None:
            count = len(rows) if isinstance(rows, Sized) else SMALL + 1
        if count == 0:
            return 0
        prepared = self._prepared(table, columns, rows, json_only=trusted and self.is_pg)
        cols = ", ".join(f'"{c}"' for c in columns)
        # The driver connection of the session's connection: same transaction, no per-row
        # SQLAlchemy work. Table and column names come from the models, never from input.
        raw: Any = self.connection.connection.driver_connection
        written = 0
        if self.is_pg and count > SMALL:
            with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as cp:
                for values in prepared:
                    cp.write_row(values)
                    written += 1
        elif self.is_pg:
            # A few rows (the live path): one multi-row INSERT is one round trip; COPY is three.
            batch = list(prepared)
            written = len(batch)
            if batch:
                marks = "(" + ", ".join("%s" for _ in columns) + ")"
                with raw.cursor() as cur:
                    cur.execute(
                        f'INSERT INTO "{table.name}" ({cols}) VALUES '  # noqa: S608
                        + ", ".join(marks for _ in batch),
                        [v for values in batch for v in values],
                        prepare=False,
                    )
        else:
            batch = list(prepared)
            written = len(batch)
            marks = ", ".join("?" for _ in columns)
            cur = raw.cursor()
            try:
                cur.executemany(
                    f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})',  # noqa: S608
                    batch,
                )
            finally:
                cur.close()
        return written

    def _prepared(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        json_only: bool = False,
    ) -> Iterator[Sequence[Any]]:
        """Rows with every value (or only JSON) through its column's bind processor."""
        procs = self._column_processors(table, columns)
        indexed = [
            (i, p)
            for i, p in enumerate(procs)
            if p is not None and (not json_only or p is _json_text)
        ]
        if not indexed:
            yield from rows
            return
        # Rows of one batch share values (the batch's timestamp, the chain id...): process each
        # distinct object once per column.
        last_in: list[Any] = [_NOTHING] * len(procs)
        last_out: list[Any] = [None] * len(procs)
        for row in rows:
            cells = list(row)
            for i, p in indexed:
                value = cells[i]
                if value is None:
                    continue
                if value is last_in[i]:
                    cells[i] = last_out[i]
                else:
                    last_in[i] = value
                    cells[i] = last_out[i] = p(value)
            yield cells

    def reserve_ids(self, table: Table, count: int, column: str = "id") -> list[int]:
        """`count` fresh primary-key values for explicit inserts.

        PostgreSQL: from the column's sequence. SQLite: after the current maximum, which is safe
        because the indexer's transactions begin IMMEDIATE (it holds the write lock).
        """
        if count <= 0:
            return []
        if self.is_pg:
            result = self.connection.execute(
                text("SELECT nextval(pg_get_serial_sequence(:t, :c)) FROM generate_series(1, :n)"),
                {"t": table.name, "c": column, "n": count},
            )
            return [int(r[0]) for r in result]
        top = self.connection.execute(
            text(f'SELECT coalesce(max("{column}"), 0) FROM "{table.name}"')  # noqa: S608
        ).scalar_one()
        return list(range(int(top) + 1, int(top) + 1 + count))


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def chunks(items: Sequence[Any], size: int = 900) -> Iterable[Sequence[Any]]:
    """Slices of at most `size` (IN-list and bind-parameter limits)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
