"""Pipelined JetStream publishing: every message stored once and acknowledged, or an error."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from certwatch.platform.jetstream_publish import Message, publish_all


async def test_a_batch_is_stored_in_order_and_a_repeat_is_a_duplicate(nc: NatsClient) -> None:
    js = nc.jetstream(timeout=5)
    await js.add_stream(StreamConfig(name="PUBTEST", subjects=["pubtest.>"]))
    batch = [Message(f"pubtest.{i % 3}", f"m{i}".encode(), {"Nats-Msg-Id": f"id-{i}"}) for i in range(700)]
    assert await publish_all(nc, batch) == [False] * 700
    again = await publish_all(nc, [*batch[:5], Message("pubtest.x", b"new", {"Nats-Msg-Id": "id-new"})])
    assert again == [True] * 5 + [False]
    info = await js.stream_info("PUBTEST")
    assert info.state.messages == 701
    first = await js.get_msg("PUBTEST", 1)
    last = await js.get_msg("PUBTEST", 700)
    assert (first.data, last.data) == (b"m0", b"m699")  # stored in the order written


async def test_an_error_jetstream_answers_is_raised(nc: NatsClient) -> None:
    js = nc.jetstream(timeout=5)
    await js.add_stream(StreamConfig(name="PUBERR", subjects=["puberr.>"]))
    wrong = Message("puberr.a", b"x", {"Nats-Msg-Id": "e1", "Nats-Expected-Stream": "ANOTHER"})
    with pytest.raises(APIError):
        await publish_all(nc, [Message("puberr.a", b"ok", {"Nats-Msg-Id": "e0"}), wrong])
    with pytest.raises(NoRespondersError):  # no stream listens there: nothing stored it
        await publish_all(nc, [Message("nowhere.a", b"x", {"Nats-Msg-Id": "e2"})])
