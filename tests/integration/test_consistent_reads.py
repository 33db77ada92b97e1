"""Readers never see half of an append: projections apply whole transactions per page, and
an answer built from several queries reads them all on one snapshot."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform import db
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import NewEvent, RecordedEvent
from certwatch.platform.projection import Projection, catch_up


async def test_a_page_never_ends_inside_an_append(event_log: EventLog) -> None:
    kind = f"Whole{uuid.uuid4().hex[:8]}"
    sizes = [5, 1, 7, 3, 5]
    for n, size in enumerate(sizes):
        await event_log.append(f"whole-{n}-{uuid.uuid4()}", [NewEvent(kind, {"i": i}) for i in range(size)],
                               expected_version=0)  # fmt: skip
    applied: list[RecordedEvent] = []
    committed_after: list[int] = []

    async def handle(conn: Conn, event: RecordedEvent) -> None:
        applied.append(event)

    projection = Projection(name=f"whole.{kind}", event_types=[kind], handle=handle, page=3,
                            after_commit=lambda: committed_after.append(len(applied)))  # fmt: skip
    assert await catch_up(event_log, projection) == sum(sizes)
    ends = {sum(sizes[: k + 1]) for k in range(len(sizes))}
    assert committed_after and set(committed_after) <= ends, committed_after
    assert [e.event_id for e in applied] == [
        e.event_id for e in await event_log.read_all(types=[kind], limit=99)
    ]


async def test_a_snapshot_reads_every_query_at_the_same_point(pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE snap_test (k int PRIMARY KEY, v text)")
        await conn.execute("INSERT INTO snap_test VALUES (1, 'old')")
    async with db.snapshot(pool) as reader:
        first = await (await reader.execute("SELECT v FROM snap_test")).fetchall()
        async with pool.connection() as writer:
            await writer.execute("UPDATE snap_test SET v = 'new'")
        second = await (await reader.execute("SELECT v FROM snap_test")).fetchall()
    assert first == second == [("old",)]
    async with db.snapshot(pool) as reader:
        assert await (await reader.execute("SELECT v FROM snap_test")).fetchall() == [("new",)]
