"""Outbox → JetStream → projections, attacked: relay crashes, NATS SIGKILL, wiped store, rebuild."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from nats import errors as nats_errors
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import bus as busmod
from certwatch.platform import localstack, log_signal
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import JsonEvent, NewEvent, RecordedEvent, Upcasters
from certwatch.platform.outbox import OutboxRelay
from certwatch.platform.projection import (
    Projection,
    ProjectionRunner,
    _lock_checkpoint,
    catch_up,
    catch_up_past,
    rebuild,
)
from tests.support.stack import wait_for


def _tally_projection(table: str) -> Projection:
    async def handle(conn: Conn, event: RecordedEvent) -> None:
        # primary key on position: applying an event twice would fail loudly
        await conn.execute(
            f"INSERT INTO {table} (position, stream_id, n) VALUES (%s, %s, %s)".encode(),
            (event.position, event.stream_id, event.data["n"]),
        )

    return Projection(
        name=f"proj_{table}", event_types=["Counted"], handle=handle,
        reset_sql=[f"DELETE FROM {table}"],
    )  # fmt: skip


@pytest.fixture
async def tally(pool: AsyncConnectionPool[Any]) -> str:
    table = f"tally_{uuid.uuid4().hex[:8]}"
    async with pool.connection() as conn:
        await conn.execute(
            f"CREATE TABLE {table} (position bigint PRIMARY KEY, stream_id text, n int)".encode()
        )
    return table


@pytest.fixture
async def bus(nats_server: localstack.Nats) -> AsyncIterator[busmod.Bus]:
    b = await busmod.connect(nats_server.url, name="test")
    yield b
    with contextlib.suppress(Exception):
        await b.close()


async def _count(pool: AsyncConnectionPool[Any], table: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}".encode())
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _append_many(event_log: EventLog, n: int, *, noise: bool = True) -> None:
    for i in range(n):
        events = [NewEvent("Counted", {"n": i})]
        if noise and i % 3 == 0:
            events.append(NewEvent("Ignored", {"n": i}))
        await event_log.append(f"count-{i % 7}", events, expected_version=None)


async def test_the_relay_publishes_each_event_as_read_upcast_with_its_trace(
    pool: AsyncConnectionPool[Any], bus: busmod.Bus, database_url: str
) -> None:
    upcasters = Upcasters()

    @upcasters.register("Versioned", 1)
    def _v2(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "unit": "days"}

    event_log = EventLog(pool, upcasters)
    trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "account_id": "a-1"}
    await event_log.append("versioned-1", [
        NewEvent("Versioned", {"n": 1, "nested": {"s": 'quote " and \\ backslash', "f": 1.5, "u": "é"}},
                 schema_version=1, metadata=trace),
        NewEvent("Versioned", {"n": 2, "unit": "hours"}, schema_version=2),
        NewEvent("Plain", {"list": [1, None, True]}),
    ], expected_version=0)  # fmt: skip
    relay = OutboxRelay(event_log, bus, database_url)
    async with await __import__("psycopg").AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO outbox_relay (name, position) VALUES ('jetstream', 0)")
        assert await relay.relay_once(conn) == 3
    for seq, event in enumerate(await event_log.read_all(), start=1):
        msg = await bus.js.get_msg(busmod.STREAM, seq)
        assert orjson.loads(msg.data or b"") == orjson.loads(busmod.encode(event))  # as read: upcast
        assert msg.subject == busmod.subject_for(event) and msg.headers is not None
        assert msg.headers.get("traceparent") == event.metadata.get("traceparent")
        assert msg.headers["Nats-Msg-Id"] == str(event.event_id)
    first = orjson.loads((await bus.js.get_msg(busmod.STREAM, 1)).data or b"")
    assert first["schema_version"] == 2 and first["data"]["unit"] == "days" and first["metadata"] == trace


async def test_relay_crash_between_publish_and_bookkeeping_duplicates_nothing(
    event_log: EventLog, bus: busmod.Bus, database_url: str
) -> None:
    await _append_many(event_log, 40, noise=False)

    async def crash(_: list[JsonEvent]) -> None:
        raise RuntimeError("relay killed after publish, before bookkeeping")

    crashing = OutboxRelay(event_log, bus, database_url, after_publish=crash)
    async with await __import__("psycopg").AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO outbox_relay (name, position) VALUES ('jetstream', 0)")
        with pytest.raises(RuntimeError):
            await crashing.relay_once(conn)
        assert crashing.published == 40
        survivor = OutboxRelay(event_log, bus, database_url)
        while await survivor.relay_once(conn):
            pass
    assert survivor.duplicates == 40 and survivor.published == 0
    info = await bus.js.stream_info(busmod.STREAM)
    assert info.state.messages == 40


@contextlib.asynccontextmanager
async def _relay_and_runner(
    event_log: EventLog, nats_server: localstack.Nats, database_url: str, tally: str
) -> AsyncIterator[None]:
    """The outbox relay and a projection runner, as a service runs them, until the block ends."""
    bus = await busmod.connect(nats_server.url, name="test")
    relay = OutboxRelay(event_log, bus, database_url, idle_poll_s=0.2)
    runner = ProjectionRunner(event_log, _tally_projection(tally), bus, idle_poll_s=0.2)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    try:
        yield
    finally:
        relay.stop()
        runner.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        with contextlib.suppress(Exception):  # NATS may be the thing the test killed
            await bus.close()


async def _has(pool: AsyncConnectionPool[Any], table: str, n: int) -> bool:
    return await _count(pool, table) == n


async def test_projection_complete_through_nats_sigkill_and_restart(
    event_log: EventLog, pool: AsyncConnectionPool[Any], nats_server: localstack.Nats,
    database_url: str, tally: str,
) -> None:  # fmt: skip
    async with _relay_and_runner(event_log, nats_server, database_url, tally):
        await _append_many(event_log, 100)
        nats_server.kill()  # SIGKILL mid-stream
        await _append_many(event_log, 100)
        nats_server.start()
        await _append_many(event_log, 100)
        await wait_for(lambda: _has(pool, tally, 300), timeout=30)
    assert await _count(pool, tally) == 300


async def test_projection_complete_after_jetstream_store_wiped_under_load(
    event_log: EventLog, pool: AsyncConnectionPool[Any], nats_server: localstack.Nats,
    database_url: str, tally: str,
) -> None:  # fmt: skip
    async with _relay_and_runner(event_log, nats_server, database_url, tally):
        writer = asyncio.create_task(_append_many(event_log, 400))
        await asyncio.sleep(0.3)
        nats_server.kill()
        shutil.rmtree(nats_server.store_dir)  # JetStream loses everything it had acknowledged
        nats_server.start()
        await writer
        await wait_for(lambda: _has(pool, tally, 400), timeout=30)
    assert await _count(pool, tally) == 400


async def test_rebuild_from_zero_equals_live_projection(
    event_log: EventLog, pool: AsyncConnectionPool[Any], tally: str
) -> None:
    projection = _tally_projection(tally)
    await _append_many(event_log, 50)
    await catch_up(event_log, projection)
    await _append_many(event_log, 25)
    await catch_up(event_log, projection)
    async with pool.connection() as conn:
        live = await (await conn.execute(f"SELECT * FROM {tally} ORDER BY 1".encode())).fetchall()
    assert len(live) == 75
    assert await rebuild(event_log, projection) == 75
    async with pool.connection() as conn:
        rebuilt = await (await conn.execute(f"SELECT * FROM {tally} ORDER BY 1".encode())).fetchall()
    assert rebuilt == live


async def test_two_replicas_of_one_projection_apply_each_event_once(
    event_log: EventLog, pool: AsyncConnectionPool[Any], tally: str
) -> None:
    projection = _tally_projection(tally)
    await _append_many(event_log, 60)
    counts = await asyncio.gather(*(catch_up(event_log, projection, page=7) for _ in range(4)))
    assert sum(counts) == 60
    assert await _count(pool, tally) == 60


async def test_read_your_writes_applies_up_to_the_write_and_leaves_the_rest_to_the_runner(
    event_log: EventLog, pool: AsyncConnectionPool[Any], tally: str
) -> None:
    projection = _tally_projection(tally)
    [mine] = await event_log.append("count-0", [NewEvent("Counted", {"n": 0})], expected_version=None)
    await _append_many(event_log, 40)  # a busy log: later writes, the runner's to apply
    await catch_up_past(event_log, projection, mine.cursor)
    assert await _count(pool, tally) == 1  # up to the write, not the 41 events


async def test_read_your_writes_does_not_wait_for_a_page_in_progress_once_applied(
    event_log: EventLog, pool: AsyncConnectionPool[Any], tally: str
) -> None:
    projection = _tally_projection(tally)
    [mine] = await event_log.append("count-0", [NewEvent("Counted", {"n": 0})], expected_version=None)
    await catch_up(event_log, projection)
    async with pool.connection() as runner, runner.transaction():  # the runner, mid-page
        await _lock_checkpoint(runner, projection.name)
        await asyncio.wait_for(catch_up_past(event_log, projection, mine.cursor), 3)


async def test_a_page_being_read_and_folded_holds_back_no_other_reader(
    event_log: EventLog, pool: AsyncConnectionPool[Any], tally: str
) -> None:
    """A page's transaction gets an id only when it writes: until then, the log's horizon
    (the oldest running transaction with an id) does not wait for it."""
    folding, release = asyncio.Event(), asyncio.Event()

    async def slow(conn: Conn, events: Sequence[RecordedEvent]) -> None:
        folding.set()
        await release.wait()

    await _append_many(event_log, 3, noise=False)
    async with pool.connection() as conn:  # a projection that has run before
        await conn.execute("INSERT INTO checkpoints (name, position) VALUES ('proj_slow', 0)")
    busy = asyncio.create_task(catch_up(event_log, Projection("proj_slow", ["Counted"], handle_batch=slow)))
    try:
        await asyncio.wait_for(folding.wait(), 5)
        [mine] = await event_log.append("count-0", [NewEvent("Counted", {"n": 9})], expected_version=None)
        await asyncio.wait_for(catch_up_past(event_log, _tally_projection(tally), mine.cursor), 3)
        assert await _count(pool, tally) == 4
    finally:
        release.set()
        await asyncio.wait_for(busy, 5)


async def test_a_failing_handler_is_retried_never_skipped_and_reported(
    event_log: EventLog, pool: AsyncConnectionPool[Any], tally: str
) -> None:
    broken = {"on": True}
    inner = _tally_projection(tally)

    async def flaky(conn: Conn, event: RecordedEvent) -> None:
        if broken["on"] and event.data["n"] == 3:
            raise RuntimeError("handler bug on event n=3")
        assert inner.handle is not None
        await inner.handle(conn, event)

    runner = ProjectionRunner(
        event_log, Projection(inner.name, inner.event_types, flaky), None, idle_poll_s=0.05
    )
    await _append_many(event_log, 6, noise=False)
    task = asyncio.create_task(runner.run())
    try:
        await wait_for(lambda: _flag(runner), timeout=10)
        assert await _count(pool, tally) == 0  # the page rolled back: nothing past the bad event
        broken["on"] = False
        await wait_for(lambda: _has(pool, tally, 6), timeout=10)
        await wait_for(lambda: _flag(runner, want=False), timeout=5)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)


async def _flag(runner: ProjectionRunner, want: bool = True) -> bool:
    return runner.failing is want


async def test_a_standby_relay_is_healthy_again_once_it_reconnects(
    event_log: EventLog, bus: busmod.Bus, database_url: str
) -> None:
    """Only the leader relays; a standby that lost the database (as every service's relay
    does when PostgreSQL restarts) must not stay 'failing' once it is connected again."""
    leader = OutboxRelay(event_log, bus, database_url, idle_poll_s=0.05)
    standby = OutboxRelay(event_log, bus, database_url, idle_poll_s=0.05)
    leading = asyncio.create_task(leader.run())
    try:
        await _append_many(event_log, 3, noise=False)
        for _ in range(200):
            if leader.published >= 3:
                break
            await asyncio.sleep(0.02)
        standby.progress.failed(OSError("connection to the database lost"))
        waiting = asyncio.create_task(standby.run())
        for _ in range(200):
            if not standby.progress.failing:
                break
            await asyncio.sleep(0.02)
        assert not standby.progress.failing and standby.published == 0
        standby.stop()
        await asyncio.wait_for(waiting, 10)
    finally:
        leader.stop()
        await asyncio.wait_for(leading, 10)


async def test_a_relay_in_standby_leaves_relaying_to_the_others_until_none_relays(
    event_log: EventLog, bus: busmod.Bus, database_url: str
) -> None:
    """The prober's relay bids for leadership only after a standby time, so events are relayed
    on another service's CPU; it takes over once no other relays."""
    deferring = OutboxRelay(event_log, bus, database_url, idle_poll_s=0.05, standby_s=0.5)
    eager = OutboxRelay(event_log, bus, database_url, idle_poll_s=0.05)
    tasks = [asyncio.create_task(deferring.run()), asyncio.create_task(eager.run())]
    try:
        await _append_many(event_log, 3, noise=False)
        for _ in range(300):
            if eager.published >= 3:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.6)  # past the standby: still the other one's job
        await _append_many(event_log, 2, noise=False)
        for _ in range(300):
            if eager.published >= 5:
                break
            await asyncio.sleep(0.02)
        assert (eager.published, deferring.published) == (5, 0)
        eager.stop()
        await asyncio.wait_for(tasks.pop(), 10)
        await _append_many(event_log, 2, noise=False)
        for _ in range(300):  # leadership is retried every 2 s
            if deferring.published >= 2:
                break
            await asyncio.sleep(0.02)
        assert deferring.published == 2
    finally:
        for relay in (deferring, eager):
            relay.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_a_runner_wakes_on_the_relay_signal_and_drops_an_older_durable(
    event_log: EventLog, pool: AsyncConnectionPool[Any], bus: busmod.Bus, database_url: str, tally: str,
) -> None:  # fmt: skip
    """The relay's one message a batch wakes a runner whose idle poll is a minute away; an
    append of 300 events is one signal, not 300 messages. A durable left by an earlier
    version (one consumer a projection) is deleted."""
    durable = f"proj_{tally}"
    await bus.js.add_consumer(busmod.STREAM, ConsumerConfig(
        durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subject=_tally_projection(tally).subject,
    ))  # fmt: skip
    signals = await bus.nc.subscribe(log_signal.SUBJECT)
    relay = OutboxRelay(event_log, bus, database_url, idle_poll_s=0.02)
    runner = ProjectionRunner(event_log, _tally_projection(tally), bus, idle_poll_s=60)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    try:
        await wait_for(lambda: _consumer_gone(bus, durable), timeout=10)
        bulk = [NewEvent("Counted", {"n": i}) for i in range(300)]
        await event_log.append("count-bulk", bulk, expected_version=None)
        await wait_for(lambda: _has(pool, tally, 300), timeout=10)  # long before the idle poll
        msg = await signals.next_msg(timeout=5)
        assert log_signal.types(msg.data) == {"Counted"}
        with pytest.raises(nats_errors.TimeoutError):
            await signals.next_msg(timeout=0.5)  # the one transaction was one batch, one signal
    finally:
        relay.stop()
        runner.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        await signals.unsubscribe()


async def _consumer_gone(bus: busmod.Bus, durable: str) -> bool:
    try:
        await bus.js.consumer_info(busmod.STREAM, durable)
    except NotFoundError:
        return True
    return False
