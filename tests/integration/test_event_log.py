"""The event log's invariants, each attacked with real concurrency on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import db
from certwatch.platform.errors import AppendOnlyViolation, ConcurrencyConflict, DuplicateEventId
from certwatch.platform.eventlog import START, EventLog
from certwatch.platform.events import UPCASTERS, NewEvent
from certwatch.services import MIGRATIONS


def _ev(n: int = 0, **data: Any) -> NewEvent:
    return NewEvent("Tested", {"n": n, **data})


async def test_append_and_read_back_in_order(event_log: EventLog) -> None:
    stream = f"test-{uuid.uuid4()}"
    first = await event_log.append(stream, [_ev(1), _ev(2)], expected_version=0)
    assert [a.stream_version for a in first] == [1, 2]
    assert first[1].position == first[0].position + 1
    again = await event_log.append(stream, [_ev(3)], expected_version=2)
    assert again[0].stream_version == 3
    events = await event_log.read_stream(stream)
    assert [e.data["n"] for e in events] == [1, 2, 3]
    assert [e.position for e in await event_log.read_all()] == [a.position for a in first + again]


async def test_expected_version_mismatch_is_a_conflict(event_log: EventLog) -> None:
    stream = f"test-{uuid.uuid4()}"
    await event_log.append(stream, [_ev()], expected_version=0)
    with pytest.raises(ConcurrencyConflict) as info:
        await event_log.append(stream, [_ev()], expected_version=0)
    assert info.value.actual == 1 and info.value.expected == 0
    assert len(await event_log.read_stream(stream)) == 1


async def test_sixteen_concurrent_writers_each_version_won_exactly_once(
    event_log: EventLog,
) -> None:
    stream = f"race-{uuid.uuid4()}"
    rounds = 5
    wins: dict[int, list[int]] = {v: [] for v in range(rounds)}
    conflicts = 0

    async def writer(w: int, version: int) -> None:
        nonlocal conflicts
        try:
            await event_log.append(stream, [_ev(w)], expected_version=version)
            wins[version].append(w)
        except ConcurrencyConflict:
            conflicts += 1

    for version in range(rounds):
        await asyncio.gather(*(writer(w, version) for w in range(16)))
    assert all(len(winners) == 1 for winners in wins.values()), wins
    assert conflicts == rounds * 15
    stored = await event_log.read_stream(stream)
    assert [e.stream_version for e in stored] == list(range(1, rounds + 1))
    assert [e.data["n"] for e in stored] == [wins[v][0] for v in range(rounds)]


async def test_append_is_idempotent_by_event_id(event_log: EventLog) -> None:
    stream = f"test-{uuid.uuid4()}"
    event = _ev(7)
    first = await event_log.append(stream, [event], expected_version=0)
    retry = await event_log.append(stream, [event], expected_version=0)
    assert retry[0].duplicate and retry[0].position == first[0].position
    assert len(await event_log.read_stream(stream)) == 1
    with pytest.raises(DuplicateEventId):
        await event_log.append(f"other-{uuid.uuid4()}", [event], expected_version=None)


async def test_events_cannot_be_updated_deleted_or_truncated(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    stream = f"test-{uuid.uuid4()}"
    await event_log.append(stream, [_ev(1)], expected_version=0)
    for sql in (
        "UPDATE events SET data = '{}'::jsonb",
        "DELETE FROM events",
        "TRUNCATE events",
    ):
        async with pool.connection() as conn:
            with pytest.raises(psycopg.Error) as info:
                await conn.execute(sql)
            assert info.value.sqlstate == "CW403", sql
    assert (await event_log.read_stream(stream))[0].data == {"n": 1}
    from certwatch.platform.eventlog import translate

    assert isinstance(translate(info.value), AppendOnlyViolation)


async def test_follower_never_skips_a_late_commit(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    """Writers on different streams hold their transactions open for random times while a
    follower polls in global order; whatever it saw must be exactly the final log."""
    writers, per_writer = 8, 6
    done = asyncio.Event()
    seen: list[int] = []

    async def slow_writer(w: int) -> None:
        for i in range(per_writer):
            async with pool.connection() as conn, conn.transaction():
                await event_log.append(f"late-{w}", [_ev(i)], expected_version=None, conn=conn)
                await asyncio.sleep(0.002 * ((w * 7 + i * 3) % 11))  # commit late

    async def follower() -> None:
        checkpoint = START
        for _ in range(10_000):
            batch = await event_log.read_all(checkpoint, limit=7)
            if batch:
                assert batch[0].cursor > checkpoint
                seen.extend(e.position for e in batch)
                checkpoint = batch[-1].cursor
            elif done.is_set():
                return
            await asyncio.sleep(0)
        raise AssertionError("follower did not finish")

    follow = asyncio.create_task(follower())
    await asyncio.gather(*(slow_writer(w) for w in range(writers)))
    done.set()
    await asyncio.wait_for(follow, 30)
    final = [e.position for e in await event_log.read_all(limit=10_000)]
    assert len(final) == writers * per_writer
    assert seen == final


async def test_old_schema_versions_are_upcast_on_read(event_log: EventLog) -> None:
    event_type = f"Upcast{uuid.uuid4().hex[:6]}"
    stream = f"test-{uuid.uuid4()}"
    await event_log.append(
        stream, [NewEvent(event_type, {"name": "a"}, schema_version=1)], expected_version=0
    )

    @UPCASTERS.register(event_type, 1)
    def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"names": [data["name"]]}

    (event,) = await event_log.read_stream(stream)
    assert event.schema_version == 2 and event.data == {"names": ["a"]}


async def test_a_batch_reusing_a_recorded_id_fails_whole_in_a_transaction(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    recorded = _ev(1)
    await event_log.append(f"a-{uuid.uuid4()}", [recorded], expected_version=0)
    other = f"b-{uuid.uuid4()}"
    with pytest.raises(DuplicateEventId):
        async with pool.connection() as conn, conn.transaction():
            await event_log.append_batch([(other, [_ev(2), recorded], None)], conn=conn)
    assert await event_log.read_stream(other) == []
    with pytest.raises(DuplicateEventId):  # on the log's own connection too: all or nothing
        await event_log.append(other, [_ev(2), recorded], expected_version=None)
    assert await event_log.read_stream(other) == []


async def test_retrying_a_whole_batch_in_a_transaction_is_idempotent(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    first, second = f"a-{uuid.uuid4()}", f"b-{uuid.uuid4()}"
    batch = [(first, [_ev(1), _ev(2)], 0), (second, [_ev(3)], None)]
    async with pool.connection() as conn, conn.transaction():
        stored = await event_log.append_batch(batch, conn=conn)
    async with pool.connection() as conn, conn.transaction():
        again = await event_log.append_batch(batch, conn=conn)
    assert [a.position for a in again] == [a.position for a in stored]
    assert all(a.duplicate for a in again) and not any(a.duplicate for a in stored)
    assert [e.stream_version for e in await event_log.read_stream(first)] == [1, 2]


async def test_big_batches_go_by_copy_with_the_same_guarantees(
    event_log: EventLog, pool: AsyncConnectionPool[Any]
) -> None:
    stream = f"big-{uuid.uuid4()}"
    events = [_ev(i) for i in range(100)]
    stored = await event_log.append(stream, events, expected_version=0)
    assert [a.stream_version for a in stored] == list(range(1, 101))
    assert [a.position for a in stored] == sorted(a.position for a in stored)
    read = await event_log.read_stream(stream)
    assert [e.data["n"] for e in read] == list(range(100)) and [e.position for e in read] == [
        a.position for a in stored
    ]
    assert {a.transaction_id for a in stored} == {e.transaction_id for e in read}

    again = await event_log.append(stream, events, expected_version=0)  # a retry: idempotent
    assert all(a.duplicate for a in again) and [a.position for a in again] == [a.position for a in stored]
    with pytest.raises(ConcurrencyConflict):
        await event_log.append(stream, [_ev(i) for i in range(100)], expected_version=0)

    many = [(f"s{i}-{uuid.uuid4()}", [_ev(i)], 0) for i in range(80)]
    many[40] = (stream, [_ev(40)], 7)  # one stream is not where the batch expects it
    with pytest.raises(ConcurrencyConflict) as info:
        await event_log.append_batch(many)
    assert info.value.stream_id == stream
    assert [s for s, _, _ in many if s != stream and await event_log.read_stream(s)] == []

    reused = [(f"r{i}-{uuid.uuid4()}", [_ev(i)], None) for i in range(80)] + [
        (f"x-{uuid.uuid4()}", [events[0]], None)
    ]
    with pytest.raises(DuplicateEventId):
        async with pool.connection() as conn, conn.transaction():
            await event_log.append_batch(reused, conn=conn)
    assert [s for s, _, _ in reused if await event_log.read_stream(s)] == []
    assert len(await event_log.read_stream(stream)) == 100


async def test_a_big_batch_of_new_streams_refuses_one_that_exists(event_log: EventLog) -> None:
    existing = f"old-{uuid.uuid4()}"
    await event_log.append(existing, [_ev(0)], expected_version=0)
    fresh = [(f"new{i}-{uuid.uuid4()}", [_ev(i)], 0) for i in range(70)]
    with pytest.raises(ConcurrencyConflict) as info:
        await event_log.append_batch([*fresh, (existing, [_ev(1)], 0)])
    assert info.value.stream_id == existing
    assert [s for s, _, _ in fresh if await event_log.read_stream(s)] == []
    stored = await event_log.append_batch(fresh)
    assert [a.stream_version for a in stored] == [1] * 70


async def test_copy_appends_from_two_processes_keep_every_order(database_url: str) -> None:
    """Autocommit COPY appends number their events from positions reserved ahead: two
    writers' reserves interleave, yet every append's positions rise with its versions, no
    position repeats, each append reports the transaction that stored it, and global order
    shows every stream's versions in order."""
    pools = [await db.open_pool(database_url, max_size=4, migrate=MIGRATIONS) for _ in range(2)]
    try:
        logs = [EventLog(p) for p in pools]
        streams = [f"rsv{i}-{uuid.uuid4().hex[:8]}" for i in range(70)]
        appends = []
        for r in range(10):
            for log in logs:
                batch = [(s, [_ev(r), _ev(r)], None) for s in streams[r % 2 :: 2]]
                appends.append(await log.append_batch(batch))
        positions = [a.position for appended in appends for a in appended]
        assert len(set(positions)) == len(positions) == 10 * 2 * 70
        for appended in appends:
            assert [a.position for a in appended] == sorted(a.position for a in appended)
            assert len({a.transaction_id for a in appended}) == 1
        async with pools[0].connection() as conn:
            cur = await conn.execute(
                "SELECT position, transaction_id, stream_id, stream_version FROM events"
                " WHERE stream_id = ANY(%s) ORDER BY transaction_id, position",
                (streams,),
            )
            rows = await cur.fetchall()
        stored = {a.position: (a.transaction_id, a.stream_id, a.stream_version) for ap in appends for a in ap}
        assert {p: (x, s, v) for p, x, s, v in rows} == stored
        seen: dict[str, list[int]] = {}
        for _, _, stream, version in rows:
            seen.setdefault(stream, []).append(version)
        assert seen == {s: list(range(1, 21)) for s in streams}
    finally:
        for p in pools:
            await p.close()


async def test_a_copy_batch_reusing_a_recorded_id_writes_nothing(event_log: EventLog) -> None:
    recorded = _ev(0)
    await event_log.append(f"once-{uuid.uuid4()}", [recorded], expected_version=0)
    batch = [(f"d{i}-{uuid.uuid4()}", [_ev(i)], None) for i in range(80)]
    with pytest.raises(DuplicateEventId):
        await event_log.append_batch([*batch, (f"again-{uuid.uuid4()}", [recorded], None)])
    assert [s for s, _, _ in batch if await event_log.read_stream(s)] == []
    stored = await event_log.append_batch(batch)
    assert [a.stream_version for a in stored] == [1] * 80


async def test_read_streams_returns_each_stream_in_version_order(event_log: EventLog) -> None:
    a, b, empty = (f"{n}-{uuid.uuid4()}" for n in ("a", "b", "empty"))
    await event_log.append_batch([(a, [_ev(1), _ev(2)], 0), (b, [_ev(3)], 0)])
    await event_log.append(a, [_ev(4)], expected_version=2)
    found = await event_log.read_streams([b, a, empty])
    assert list(found) == [b, a, empty]
    assert [e.data["n"] for e in found[a]] == [1, 2, 4] and [e.stream_version for e in found[a]] == [1, 2, 3]
    assert [e.data["n"] for e in found[b]] == [3] and found[empty] == []
