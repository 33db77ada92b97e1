"""The event log's contract, run through every write path at every batch size that matters.

Each invariant (global order, concurrency conflict, idempotency by event id, late commits
never skipped) is checked through each way events reach the log: the log's own connection
(one event: a plain INSERT on a known head or the one-statement append; 64 and more: an
autocommit COPY), the checked SQL function, a caller's transaction (COPY in a savepoint),
a caller's pipeline, and a projection's page (where a processor appends). Sizes sit on both
sides of every internal threshold: a path that works for 63 events and wedges at 64 (as the
classifier once did: COPY inside a pipeline) fails here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import db, localstack
from certwatch.platform import eventlog as el
from certwatch.platform.errors import ConcurrencyConflict, DuplicateEventId
from certwatch.platform.eventlog import START, Appended, EventLog
from certwatch.platform.events import NewEvent, RecordedEvent
from certwatch.platform.projection import Projection, catch_up
from tests.support.databases import fresh_database

Batch = list[tuple[str, Sequence[NewEvent], int | None]]
Write = Callable[[Batch], Awaitable[list[Appended]]]
Path = Callable[[EventLog, AsyncConnectionPool[Any]], Awaitable[Write]]
"""Sets up one append by a write path (before the test opens any transaction of its own)."""

SIZES = (1, 63, 64, 65, 500, 5000)
LAYOUTS = ("one-stream", "a-stream-each")


async def _own(log: EventLog, pool: AsyncConnectionPool[Any]) -> Write:
    return log.append_batch


async def _checked(log: EventLog, pool: AsyncConnectionPool[Any]) -> Write:
    """The SQL function every other path falls back on when it cannot tell why it failed."""

    async def write(batch: Batch) -> list[Appended]:
        async with pool.connection() as conn:
            try:
                rows = await (await conn.execute(el._APPEND_CHECKED, (el._payload(batch),))).fetchall()
            except psycopg.Error as exc:
                raise el.translate(exc) from exc
        return [Appended(r[0], int(r[1]), int(r[2]), bool(r[3]), int(r[4])) for r in rows]

    return write


async def _caller_transaction(log: EventLog, pool: AsyncConnectionPool[Any]) -> Write:
    async def write(batch: Batch) -> list[Appended]:
        async with pool.connection() as conn, conn.transaction():
            return await log.append_batch(batch, conn=conn)

    return write


async def _pipeline(log: EventLog, pool: AsyncConnectionPool[Any]) -> Write:
    async def write(batch: Batch) -> list[Appended]:
        async with pool.connection() as conn, conn.transaction(), conn.pipeline():
            return await log.append_batch(batch, conn=conn)

    return write


async def _projection_page(log: EventLog, pool: AsyncConnectionPool[Any]) -> Write:
    """A processor appending from inside a page of 65 events (one span per page, one pipeline)."""
    trigger = f"Trigger{uuid.uuid4().hex[:8]}"
    await log.append_batch([(f"trigger-{uuid.uuid4()}", [NewEvent(trigger, {"n": i}) for i in range(65)], 0)])

    async def write(batch: Batch) -> list[Appended]:
        out: list[Appended] = []

        async def handle_batch(conn: el.Conn, events: Sequence[RecordedEvent]) -> None:
            assert len(events) == 65
            out.extend(await log.append_batch(batch, conn=conn))

        projection = Projection(name=f"contract.{trigger}", event_types=[trigger], handle_batch=handle_batch)
        assert await catch_up(log, projection) == 65
        return out

    return write


@pytest.fixture(scope="module")
def shared_database(postgres_server: localstack.Postgres) -> Iterator[str]:
    """One database for the whole module: every test writes its own event type and streams,
    so they cannot see each other's events (and a database per test would cost more than
    the 240 tests themselves)."""
    with fresh_database(postgres_server, "contract") as url:
        yield url


@pytest.fixture
async def pool(shared_database: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    p = await db.open_pool(shared_database, max_size=8)
    try:
        yield p
    finally:
        await p.close()


PATHS: dict[str, Path] = {
    "own-connection": _own,
    "checked-function": _checked,
    "caller-transaction": _caller_transaction,
    "caller-pipeline": _pipeline,
    "projection-page": _projection_page,
}

pytestmark = [
    pytest.mark.parametrize("path", list(PATHS)),
    pytest.mark.parametrize("size", SIZES),
    pytest.mark.parametrize("layout", LAYOUTS),
]


def _batch(kind: str, size: int, layout: str, *, expected: int | None = 0) -> Batch:
    events = [NewEvent(kind, {"n": i}) for i in range(size)]
    if layout == "one-stream":
        return [(f"one-{uuid.uuid4()}", events, expected)]
    return [(f"each-{uuid.uuid4()}", [e], expected) for e in events]


def _kind() -> str:
    return f"Contract{uuid.uuid4().hex[:10]}"


async def test_appends_land_in_global_order(
    event_log: EventLog, pool: Any, path: str, size: int, layout: str
) -> None:
    kind = _kind()
    batch = _batch(kind, size, layout)
    appended = await (await PATHS[path](event_log, pool))(batch)
    read = await event_log.read_all(START, limit=size + 1, types=[kind])
    assert [e.event_id for e in read] == [e.event_id for _, evs, _ in batch for e in evs]
    assert [(e.position, e.transaction_id) for e in read] == [
        (a.position, a.transaction_id) for a in appended
    ]
    assert [(e.stream_id, e.stream_version) for e in read] == [
        (s, v) for s, evs, _ in batch for v in range(1, len(evs) + 1)
    ]
    assert not any(a.duplicate for a in appended)
    assert [e.cursor for e in read] == sorted(e.cursor for e in read)


async def test_a_conflict_fails_the_whole_batch(
    event_log: EventLog, pool: Any, path: str, size: int, layout: str
) -> None:
    kind = _kind()
    existing = f"existing-{uuid.uuid4()}"
    await event_log.append(existing, [NewEvent(kind, {"n": -1})], expected_version=0)
    batch = [*_batch(kind, size - 1, layout), (existing, [NewEvent(kind, {"n": size})], 0)]
    batch = [b for b in batch if b[1]]
    write = await PATHS[path](event_log, pool)
    with pytest.raises(ConcurrencyConflict) as info:
        await write(batch)
    assert info.value.stream_id in (existing, "")
    assert [e.stream_id for e in await event_log.read_all(START, limit=size + 2, types=[kind])] == [existing]


async def test_appending_the_same_ids_again_is_idempotent(
    event_log: EventLog, pool: Any, path: str, size: int, layout: str
) -> None:
    kind = _kind()
    batch = _batch(kind, size, layout)
    first = await (await PATHS[path](event_log, pool))(batch)
    again = await (await PATHS[path](event_log, pool))(batch)
    assert all(a.duplicate for a in again)
    assert [a.position for a in again] == [a.position for a in first]
    assert len(await event_log.read_all(START, limit=2 * size + 1, types=[kind])) == size

    recorded = batch[0][1][0]
    reusing = [*_batch(kind, size - 1, layout), (f"reuse-{uuid.uuid4()}", [recorded], None)]
    reusing = [b for b in reusing if b[1]]
    write = await PATHS[path](event_log, pool)
    with pytest.raises(DuplicateEventId):
        await write(reusing)
    assert len(await event_log.read_all(START, limit=2 * size + 1, types=[kind])) == size


async def test_a_follower_never_skips_an_append_that_committed_late(
    event_log: EventLog, pool: Any, path: str, size: int, layout: str
) -> None:
    """An earlier transaction still open while this path commits: a follower reading in the
    meantime must not get past it, and sees every event once it commits."""
    kind = _kind()
    early = NewEvent(kind, {"n": "early"})
    write = await PATHS[path](event_log, pool)
    async with pool.connection() as held:
        async with held.transaction():
            await event_log.append(f"early-{uuid.uuid4()}", [early], expected_version=0, conn=held)
            batch = _batch(kind, size, layout)
            await asyncio.wait_for(write(batch), 60)
            seen = await event_log.read_all(START, limit=size + 2, types=[kind])
        after = await event_log.read_all(seen[-1].cursor if seen else START, limit=size + 2, types=[kind])
    assert [e.event_id for e in seen + after] == [
        early.event_id,
        *(e.event_id for _, evs, _ in batch for e in evs),
    ]
