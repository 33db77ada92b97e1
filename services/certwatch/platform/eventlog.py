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
    "position, event_id, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at"
)

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Appended:
    position: int
    stream_version: int
    duplicate: bool


def _row_to_event(row: tuple[Any, ...]) -> RecordedEvent:
    return RecordedEvent(
        position=row[0], event_id=row[1], stream_id=row[2], stream_version=row[3], type=row[4],
        schema_version=row[5], data=row[6], metadata=row[7], recorded_at=row[8],
    )  # fmt: skip


class EventLog:
    """Append with optimistic concurrency; read in global or stream order.

    Every method takes an optional connection so a caller can append events and update
    its own rows (and checkpoint) in one transaction.
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
        if not events:
            return []
        payload = dumps([e.as_json() for e in events])
        sql = "SELECT * FROM append_events(%s, %s, %s::jsonb)"
        try:
            if conn is not None:
                cur = await conn.execute(sql, (stream_id, expected_version, payload))
                rows = await cur.fetchall()
            else:
                async with self._pool.connection() as own:
                    cur = await own.execute(sql, (stream_id, expected_version, payload))
                    rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise errors.translate(exc, stream_id=stream_id, expected=expected_version) from exc
        return [Appended(int(r[0]), int(r[1]), bool(r[2])) for r in rows]

    async def append_batch(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        conn: Conn | None = None,
    ) -> list[Appended]:
        """Append to many streams in one round trip and one transaction: (stream, events,
        expected version) each. One conflict fails the whole batch."""
        if not batch:
            return []
        payload = dumps(
            [{"stream": s, "expected": v, "events": [e.as_json() for e in evs]} for s, evs, v in batch]
        )
        sql = "SELECT out_position, out_version, out_duplicate FROM append_batch(%s::jsonb)"
        try:
            if conn is not None:
                rows = await (await conn.execute(sql, (payload,))).fetchall()
            else:
                async with self._pool.connection() as own:
                    rows = await (await own.execute(sql, (payload,))).fetchall()
        except psycopg.Error as exc:
            raise errors.translate(exc) from exc
        return [Appended(int(r[0]), int(r[1]), bool(r[2])) for r in rows]

    async def read_all(
        self,
        after: int,
        *,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        upto: int | None = None,
        conn: Conn | None = None,
    ) -> list[RecordedEvent]:
        """Events after global position `after`, in order, optionally of some types only."""
        clauses, params = ["position > %s"], [after]
        if upto is not None:
            clauses.append("position <= %s")
            params.append(upto)
        if types is not None:
            clauses.append("event_type = ANY(%s)")
            params.append(list(types))  # type: ignore[arg-type]
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
            f" ORDER BY position LIMIT {int(limit)}"
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
        """The last committed global position (0 for an empty log)."""
        sql = "SELECT coalesce(max(position), 0) FROM events"
        if conn is not None:
            cur = await conn.execute(sql)
            row = await cur.fetchone()
        else:
            async with self._pool.connection() as own:
                cur = await own.execute(sql)
                row = await cur.fetchone()
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
