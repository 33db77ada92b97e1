"""Creating JetStream streams: a cluster still forming is waited for, any other refusal is not."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from certwatch.platform import bus as busmod
from certwatch.platform import observation_stream
from certwatch.platform.bus import add_stream
from tests.support.nats_cluster import nats_cluster


async def test_a_refusal_that_is_not_a_forming_cluster_is_raised_at_once(nc: NatsClient) -> None:
    js = nc.jetstream(timeout=5)
    started = time.monotonic()
    with pytest.raises(APIError) as refused:  # one server, not a cluster: 3 replicas never will be
        await add_stream(
            js, StreamConfig(name="NOPLACE", subjects=["noplace.>"], num_replicas=3), within_s=20
        )
    assert refused.value.err_code == 10074 and time.monotonic() - started < 5  # not waited for
    await add_stream(js, StreamConfig(name="PLACED", subjects=["placed.>"]))
    assert (await js.stream_info("PLACED")).config.name == "PLACED"


@pytest.mark.timeout(120)
async def test_streams_are_ensured_while_the_cluster_has_no_quorum(tmp_path: Path) -> None:
    """A service starting beside a cluster whose peers are not up yet waits for them: its
    stream-info requests go unanswered (no meta leader) until a quorum forms."""
    with nats_cluster(tmp_path / "cluster") as cluster:
        cluster.kill("n2")
        cluster.kill("n3")  # n1 alone: no JetStream meta leader, so no answer
        url = cluster.node("n1").url
        events = asyncio.create_task(busmod.connect(url, name="test-events", replicas=3))
        nc = await nats.connect(url, max_reconnect_attempts=-1)
        try:
            observations = asyncio.create_task(
                observation_stream.ensure_stream(nc.jetstream(timeout=5), replicas=3)
            )
            await asyncio.sleep(7)  # longer than one JetStream request's 5 s timeout
            assert not events.done() and not observations.done()  # still waiting, not failed
            cluster.restart("n2")
            cluster.restart("n3")
            bus = await asyncio.wait_for(events, 60)
            await asyncio.wait_for(observations, 60)
            try:
                assert (await bus.js.stream_info(busmod.STREAM)).config.num_replicas == 3
                info = await nc.jetstream(timeout=10).stream_info(observation_stream.STREAM)
                assert info.config.num_replicas == 3
            finally:
                await bus.close()
        finally:
            for task in (events, observations):
                task.cancel()
            await nc.close()
