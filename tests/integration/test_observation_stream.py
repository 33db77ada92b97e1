"""The observation stream against a real NATS JetStream: explicit limits, dedup by
observation id, oldest discarded when full (publishing never fails), redelivery until a
batch is handled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import orjson
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy

from certwatch.platform import observation_stream as ostream


@pytest.fixture
def js(nc: NatsClient) -> JetStreamContext:
    return nc.jetstream(timeout=5)


def observation(domain_id: str | None = None, *, size: int = 100) -> ostream.Outgoing:
    domain_id = domain_id or str(uuid.uuid4())
    return ostream.Outgoing(
        str(uuid.uuid4()), domain_id, orjson.dumps({"domain_id": domain_id, "pad": "x" * size})
    )


async def test_the_stream_is_created_with_its_limits_and_updated_to_new_ones(js: JetStreamContext) -> None:
    await ostream.ensure_stream(js)
    config = (await js.stream_info(ostream.STREAM)).config
    assert (config.max_age, config.max_bytes, config.discard, config.duplicate_window) == (
        6 * 3600.0, 1 << 30, DiscardPolicy.OLD, 600.0,
    )  # fmt: skip
    await ostream.ensure_stream(js, ostream.Limits(max_age_s=3600.0, max_bytes=1 << 20))
    await ostream.ensure_stream(js, ostream.Limits(max_age_s=3600.0, max_bytes=1 << 20))  # no change
    config = (await js.stream_info(ostream.STREAM)).config
    assert (config.max_age, config.max_bytes) == (3600.0, 1 << 20)


async def test_a_republished_observation_is_stored_once(js: JetStreamContext, nc: NatsClient) -> None:
    await ostream.ensure_stream(js)
    first, second = observation(), observation()
    assert await ostream.publish(nc, [first, second]) == 0
    assert await ostream.publish(nc, [first]) == 1  # a retried publish
    assert (await js.stream_info(ostream.STREAM)).state.messages == 2


async def test_a_full_stream_drops_the_oldest_and_keeps_accepting(
    js: JetStreamContext, nc: NatsClient
) -> None:
    await ostream.ensure_stream(js, ostream.Limits(max_bytes=64 * 1024, max_msg_size=4096))
    sent = [observation(size=1000) for _ in range(200)]  # about 200 KB into 64 KiB
    for start in range(0, len(sent), 50):
        await ostream.publish(nc, sent[start : start + 50])  # never refused
    state = (await js.stream_info(ostream.STREAM)).state
    assert state.bytes <= 64 * 1024 and 0 < state.messages < 200
    assert state.last_seq == 200 and state.first_seq > 1  # the oldest went


async def test_a_batch_is_acknowledged_only_once_handled(js: JetStreamContext, nc: NatsClient) -> None:
    await ostream.ensure_stream(js)
    sent = [observation() for _ in range(5)]
    await ostream.publish(nc, sent)
    seen: list[ostream.Incoming] = []
    fail = True

    async def handler(batch: Sequence[ostream.Incoming]) -> None:
        seen.extend(batch)
        if fail:
            raise RuntimeError("database down")

    consumer = ostream.ObservationConsumer(nc, "test_obs", handler, idle_poll_s=0.2, ack_wait_s=1.0)
    with pytest.raises(RuntimeError):
        await consumer.fetch_once()
    fail = False
    async with asyncio.timeout(15):  # redelivered after ack_wait
        while {i.observation_id for i in seen if i.delivered == 2} != {o.observation_id for o in sent}:
            await consumer.fetch_once()
    assert [i.body for i in seen[:5]] == [o.body for o in sent]  # in publish order
    assert await consumer.fetch_once() == 0  # acknowledged: nothing comes back
    assert consumer.handled == 5


async def test_the_consumer_worker_runs_until_stopped(js: JetStreamContext, nc: NatsClient) -> None:
    await ostream.ensure_stream(js)
    got: list[str] = []

    async def handler(batch: Sequence[ostream.Incoming]) -> None:
        got.extend(i.observation_id for i in batch)

    consumer = ostream.ObservationConsumer(nc, "test_worker", handler, idle_poll_s=0.1)
    task = asyncio.create_task(consumer.run())
    sent = [observation() for _ in range(20)]
    await ostream.publish(nc, sent)
    async with asyncio.timeout(10):
        while len(got) < 20:
            await asyncio.sleep(0.02)
    consumer.stop()
    await asyncio.wait_for(task, 5)
    assert got == [o.observation_id for o in sent] and not consumer.failing


async def test_a_backlog_comes_in_full_batches_and_a_short_one_without_waiting(
    nc: NatsClient, js: JetStreamContext
) -> None:
    await ostream.ensure_stream(js)
    sent = [observation(size=10) for _ in range(25)]
    await ostream.publish(nc, sent)
    sizes: list[int] = []
    got: list[bytes] = []

    async def handler(batch: Sequence[ostream.Incoming]) -> None:
        sizes.append(len(batch))
        got.extend(i.body for i in batch)

    consumer = ostream.ObservationConsumer(nc, "test_batches", handler, batch=10, idle_poll_s=5.0)
    async with asyncio.timeout(4):  # a short batch does not wait for the 5 s idle poll
        for _ in range(3):
            await consumer.fetch_once()
    assert sizes == [10, 10, 5] and got == [o.body for o in sent]
    late = [observation(size=10) for _ in range(3)]

    async def publish_later() -> None:
        await asyncio.sleep(0.3)
        await ostream.publish(nc, late)

    publishing = asyncio.create_task(publish_later())
    async with asyncio.timeout(4):  # idle: waits for the first message, no longer than that needs
        while consumer.handled < 28:
            await consumer.fetch_once()
    await publishing
    assert got == [o.body for o in [*sent, *late]] and consumer.handled == 28
    async with asyncio.timeout(5):  # every one acknowledged (the server applies acks apart)
        while (await js.consumer_info(ostream.STREAM, "test_batches")).num_ack_pending:
            await asyncio.sleep(0.02)


def test_a_domain_always_goes_to_the_same_partition() -> None:
    domain = str(uuid.uuid4())
    assert ostream.subject_for(domain) == ostream.subject_for(domain.upper())
    assert {ostream.partition(str(uuid.uuid4())) for _ in range(500)} == set(range(ostream.PARTITIONS))
