"""The PostgreSQL event log: the source of truth every projection and stream derives from."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import errors
from certwatch.platform.events import UPCASTERS, NewEvent, RecordedEvent, Upcasters, dumps

_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data,"
    " metadata, recorded_at, transaction_id"
)
# Only events of transactions older than every running one: nothing can commit behind them.
_HORIZON = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
_RETRIES_ON_RACE = 5

Conn = psycopg.AsyncConnection[Any]

Cursor = tuple[int, int]
"""Where a reader stands in global order: (transaction id, position) of the last event read."""

START: Cursor = (0, 0)


@dataclass(frozen=True, slots=True)
class Appended:
    stream_id: str
    position: int
    stream_version: int
    duplicate: bool
    transaction_id: int

    @property
    def cursor(self) -> Cursor:
        return (self.transaction_id, self.position)


def _row_to_event(row: tuple[Any, ...]) -> RecordedEvent:
    return RecordedEvent(
        position=row[0], event_id=row[1], stream_id=row[2], stream_version=row[3], type=row[4],
        schema_version=row[5], data=row[6], metadata=row[7], recorded_at=row[8],
        transaction_id=int(row[9]),
    )  # fmt: skip


class EventLog:
    """Append with optimistic concurrency; read in global or stream order.

    Global order is (transaction id, position): appends run concurrently (no table lock,
    so commits group on the WAL), and a reader only ever sees a prefix of that order that
    can no longer grow behind it. Every method takes an optional connection so a caller can
    append events and update its own rows (and checkpoint) in one transaction.
    """

    def __init__(self, pool: AsyncConnectionPool[Any], upcasters: Upcasters = UPCASTERS):
        self._pool = pool
        self._upcasters = upcasters

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        return self._pool

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        conn: Conn | None = None,
    ) -> list[Appended]:
        """Append `events` to `stream_id` if it is at `expected_version` (None: any).

        Raises `ConcurrencyConflict` when another writer got there first. Appending the
        same event ids again returns the stored positions with `duplicate=True`.
        """
        return await self.append_batch([(stream_id, events, expected_version)], conn=conn)

    async def append_batch(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        conn: Conn | None = None,
    ) -> list[Appended]:
        """Append to many streams in one round trip and one transaction: (stream, events,
        expected version) each, every stream at most once. One conflict fails the batch.

        With no connection given and no expected versions, a race with a concurrent writer
        on the same stream is retried (a few times): "any version" means any.
        """
        batch = [b for b in batch if b[1]]
        if not batch:
            return []
        streams = [s for s, _, _ in batch]
        if len(set(streams)) != len(streams):
            raise ValueError("append_batch: a stream appears twice in one batch")
        payload = dumps(
            [{"stream": s, "expected": v, "events": [e.as_json() for e in evs]} for s, evs, v in batch]
        )
        sql = (
            "SELECT out_stream, out_position, out_version, out_duplicate, out_transaction::text"
            " FROM append_batch(%s::jsonb)"
        )
        retry = conn is None and all(v is None for _, _, v in batch)
        for attempt in range(_RETRIES_ON_RACE):
            try:
                if conn is not None:
                    rows = await (await conn.execute(sql, (payload,))).fetchall()
                else:
                    async with self._pool.connection() as own:
                        rows = await (await own.execute(sql, (payload,))).fetchall()
                return [Appended(r[0], int(r[1]), int(r[2]), bool(r[3]), int(r[4])) for r in rows]
            except psycopg.Error as exc:
                error = errors.translate(exc, stream_id=streams[0] if len(streams) == 1 else "",
                                         expected=batch[0][2] if len(batch) == 1 else None)  # fmt: skip
                if retry and isinstance(error, errors.ConcurrencyConflict) and attempt < _RETRIES_ON_RACE - 1:
                    continue
                raise error from exc
        raise AssertionError("unreachable")

    async def read_all(
        self,
        after: Cursor = START,
        *,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        conn: Conn | None = None,
    ) -> list[RecordedEvent]:
        """Committed events after `after` in global order, optionally of some types only.

        Never returns an event that a transaction still running could precede.
        """
        clauses = ["(transaction_id, position) > (%s::text::xid8, %s)", _HORIZON]
        params: list[Any] = [str(after[0]), after[1]]
        if types is not None:
            clauses.append("event_type = ANY(%s)")
            params.append(list(types))
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
            f" ORDER BY transaction_id, position LIMIT {int(limit)}"
        )
        return await self._fetch(sql, params, conn)

    async def read_stream(
        self, stream_id: str, *, after_version: int = 0, conn: Conn | None = None
    ) -> list[RecordedEvent]:
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s AND stream_version > %s"
            " ORDER BY stream_version"
        )
        return await self._fetch(sql, [stream_id, after_version], conn)

    async def get(self, event_id: uuid.UUID, *, conn: Conn | None = None) -> RecordedEvent | None:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM events WHERE event_id = %s", [event_id], conn)
        return rows[0] if rows else None

    async def head(self, *, conn: Conn | None = None) -> int:
        """The highest position handed out so far (0 for an empty log)."""
        sql = "SELECT coalesce(max(position), 0) FROM events"
        if conn is not None:
            row = await (await conn.execute(sql)).fetchone()
        else:
            async with self._pool.connection() as own:
                row = await (await own.execute(sql)).fetchone()
        assert row is not None
        return int(row[0])

    async def _fetch(self, sql: str, params: Sequence[Any], conn: Conn | None) -> list[RecordedEvent]:
        if conn is not None:
            async with conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute(sql.encode(), params)
                rows = await cur.fetchall()
        else:
            async with self._pool.connection() as own, own.cursor(row_factory=tuple_row) as cur:
                await cur.execute(sql.encode(), params)
                rows = await cur.fetchall()
        return [self._upcasters.upcast(_row_to_event(r)) for r in rows]
