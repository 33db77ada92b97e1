"""Creating JetStream streams: a cluster still forming is waited for, any other refusal is not."""

from __future__ import annotations

import time

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from certwatch.platform.bus import add_stream


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
