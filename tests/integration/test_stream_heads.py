"""Remembered stream heads (COPY appends skip the version lookup) never cost a version.

Each test builds the situation in which a head that is wrong would leave a gap or a
duplicate version in a stream, and checks every stream's versions are exactly 1..n.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import db
from certwatch.platform.errors import ConcurrencyConflict, TransientStoreError
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.services import MIGRATIONS

WIDE = 80  # streams per batch: over the COPY threshold with one event each


def _batch(streams: list[str], tag: str = "") -> list[tuple[str, list[NewEvent], int | None]]:
    return [(s, [NewEvent("Tested", {"stream": s, "tag": tag})], None) for s in streams]


def _streams(prefix: str, n: int = WIDE) -> list[str]:
    return [f"{prefix}{i}-{uuid.uuid4().hex[:8]}" for i in range(n)]


async def _versions(log: EventLog, streams: list[str]) -> dict[str, list[int]]:
    return {s: [e.stream_version for e in await log.read_stream(s)] for s in streams}


async def test_a_head_behind_the_log_is_caught_and_the_batch_redone(pool: AsyncConnectionPool[Any]) -> None:
    mine, other = EventLog(pool), EventLog(pool)  # two processes' logs on one database
    streams = _streams("h")
    await mine.append_batch(_batch(streams))
    assert all(mine._heads.guess(s, None) == 1 for s in streams)  # remembered, will be used
    for s in streams[::8]:
        await other.append(s, [NewEvent("Tested", {"by": "other"})], expected_version=None)

    appended = await mine.append_batch(_batch(streams, "again"))

    passed = set(streams[::8])
    assert [a.stream_version for a in appended] == [3 if s in passed else 2 for s in streams]
    assert await _versions(mine, streams) == {s: [1, 2, 3] if s in passed else [1, 2] for s in streams}
    assert not mine._heads.use()  # a stale guess: guessing pauses for a while


async def test_a_stale_head_in_a_callers_transaction_keeps_the_transaction(
    pool: AsyncConnectionPool[Any],
) -> None:
    mine, other = EventLog(pool), EventLog(pool)
    streams = _streams("c")
    await mine.append_batch(_batch(streams))
    await other.append(streams[5], [NewEvent("Tested", {"by": "other"})], expected_version=None)
    marker = f"marker-{uuid.uuid4()}"
    async with pool.connection() as conn, conn.transaction():
        await mine.append(marker, [NewEvent("Tested", {})], expected_version=0, conn=conn)
        await mine.append_batch(_batch(streams, "again"), conn=conn)
    versions = await _versions(mine, streams)
    assert versions[streams[5]] == [1, 2, 3]
    assert all(v == [1, 2] for s, v in versions.items() if s != streams[5])
    assert len(await mine.read_stream(marker)) == 1  # the savepoint rolled back, not the caller


async def test_heads_of_a_rolled_back_transaction_are_never_trusted(pool: AsyncConnectionPool[Any]) -> None:
    log = EventLog(pool)
    streams = _streams("r")
    await log.append_batch(_batch(streams))
    try:
        async with pool.connection() as conn, conn.transaction():
            await log.append_batch(_batch(streams, "doomed"), conn=conn)  # heads 2, tentative
            raise RuntimeError("the caller gives up")
    except RuntimeError:
        pass
    await log.append_batch(_batch(_streams("unrelated")))  # settles the tentative heads
    assert all(log._heads.guess(s, None) == 1 for s in streams)

    appended = await log.append_batch(_batch(streams, "next"))

    assert [a.stream_version for a in appended] == [2] * WIDE
    assert await _versions(log, streams) == {s: [1, 2] for s in streams}


async def test_heads_of_a_rolled_back_savepoint_are_never_trusted(pool: AsyncConnectionPool[Any]) -> None:
    """The transaction commits, so its id reads as committed; its events do not exist."""
    log = EventLog(pool)
    streams = _streams("s")
    kept = f"kept-{uuid.uuid4()}"
    async with pool.connection() as conn, conn.transaction():
        try:
            async with conn.transaction():
                await log.append_batch(_batch(streams, "doomed"), conn=conn)
                raise RuntimeError("the caller undoes its savepoint")
        except RuntimeError:
            pass
        await log.append(kept, [NewEvent("Tested", {})], expected_version=0, conn=conn)
    await log.append_batch(_batch(_streams("unrelated")))  # settles: committed, but nothing there

    appended = await log.append_batch(_batch(streams, "first"))

    assert [a.stream_version for a in appended] == [1] * WIDE
    assert len(await log.read_stream(kept)) == 1


async def test_heads_of_a_committed_callers_transaction_are_trusted_once_settled(
    pool: AsyncConnectionPool[Any],
) -> None:
    log = EventLog(pool)
    streams = _streams("t")
    async with pool.connection() as conn, conn.transaction():
        await log.append_batch(_batch(streams), conn=conn)
    assert all(log._heads.guess(s, None) is None for s in streams)  # not before it is known
    await log.append_batch(_batch(_streams("unrelated")))
    assert all(log._heads.guess(s, None) == 1 for s in streams)

    appended = await log.append_batch(_batch(streams, "next"))

    assert [a.stream_version for a in appended] == [2] * WIDE
    assert log._heads.use()  # the guesses were right: no pause


async def test_two_processes_racing_on_the_same_streams_lose_no_version(database_url: str) -> None:
    pools = [await db.open_pool(database_url, max_size=4, migrate=MIGRATIONS) for _ in range(2)]
    try:
        logs = [EventLog(p) for p in pools]
        streams = _streams("x", 100)
        rounds = 12

        async def writer(w: int) -> int:
            written = 0
            for r in range(rounds):
                written += len(await logs[w].append_batch(_batch(streams, f"{w}.{r}")))
            return written

        written = await asyncio.wait_for(asyncio.gather(writer(0), writer(1)), timeout=120)
        assert sum(written) == 2 * rounds * len(streams)
        versions = await _versions(logs[0], streams)
        assert versions == {s: list(range(1, 2 * rounds + 1)) for s in streams}
    finally:
        for p in pools:
            await p.close()


async def test_single_appends_on_a_stale_head_still_get_the_next_version_or_a_conflict(
    pool: AsyncConnectionPool[Any],
) -> None:
    mine, other = EventLog(pool), EventLog(pool)
    stream = f"one-{uuid.uuid4()}"
    await mine.append(stream, [NewEvent("Tested", {"n": 1})], expected_version=0)
    assert mine._heads.guess(stream, 1) == 1  # the next append will not look the stream up
    await other.append(stream, [NewEvent("Tested", {"n": 2})], expected_version=1)

    with pytest.raises(ConcurrencyConflict) as info:
        await mine.append(stream, [NewEvent("Tested", {"n": 3})], expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)

    await other.append(stream, [NewEvent("Tested", {"n": 3})], expected_version=2)
    while not mine._heads.use():  # past the pause a stale guess causes
        pass
    mine._heads.committed([(stream, 2)])  # remembered, and behind the log again
    appended = await mine.append(stream, [NewEvent("Tested", {"n": 4})], expected_version=None)
    assert appended[0].stream_version == 4
    assert [e.data["n"] for e in await mine.read_stream(stream)] == [1, 2, 3, 4]


async def test_a_retried_single_append_on_a_known_head_is_idempotent(pool: AsyncConnectionPool[Any]) -> None:
    log = EventLog(pool)
    stream = f"retry-{uuid.uuid4()}"
    event = NewEvent("Tested", {"n": 1})
    first = await log.append(stream, [event], expected_version=None)
    again = await log.append(stream, [event], expected_version=None)
    assert again[0].duplicate and again[0].position == first[0].position
    assert len(await log.read_stream(stream)) == 1


async def _kill_the_pools_connection(pool: AsyncConnectionPool[Any], database_url: str) -> None:
    async with pool.connection() as conn:
        pid = (await (await conn.execute("SELECT pg_backend_pid()")).fetchone() or [0])[0]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.mark.parametrize("path", ["copy", "single"])
async def test_a_lost_connection_forgets_heads_and_reserved_positions(database_url: str, path: str) -> None:
    """After a failover the server may be behind what this process saw: nothing it
    remembered (stream heads, positions reserved ahead) may be trusted any more."""
    pool = await db.open_pool(database_url, min_size=1, max_size=1, migrate=MIGRATIONS)
    try:
        log = EventLog(pool)
        streams = _streams("lost")
        await log.append_batch(_batch(streams))
        assert len(log._heads) == WIDE and log._positions.take(1) is not None
        await _kill_the_pools_connection(pool, database_url)
        with pytest.raises(TransientStoreError):
            if path == "copy":
                await log.append_batch(_batch(streams, "after"))
            else:
                await log.append(streams[0], [NewEvent("Tested", {})], expected_version=1)
        assert len(log._heads) == 0 and log._positions.take(1) is None
        await log.append_batch(_batch(streams, "again"))  # the pool has reconnected
        assert await _versions(log, streams) == {s: [1, 2] for s in streams}
    finally:
        await pool.close()
