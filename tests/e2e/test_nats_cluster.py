"""The stack on a three-node JetStream cluster, streams at replicas 3, through failures.

While domains are added and probed through the real services, the test SIGKILLs the
stream's leader (and restarts it), then a follower (and restarts it), then cuts one node's
routes away (and heals them). Afterwards every domain has its verdict, every projection
and the relay report no lag, every projection equals its rebuild from the log (each event
applied once), and the stream holds each event of the log once (`Nats-Msg-Id` dedup held
through the relay's retries). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from certwatch.platform import bus as busmod
from certwatch.platform import observation_stream
from certwatch.platform.config import Settings
from tests.support.dns_server import SuffixZone, dns_server
from tests.support.domain_load import BATCH, UNITS, Load
from tests.support.nats_cluster import Cluster, nats_cluster, wait_stream_current
from tests.support.pki import TestPKI
from tests.support.settled import assert_rebuilds_equal_live, assert_settled
from tests.support.stack import running_stack
from tests.support.tls_server import server_context, tls_server

SETTLE_S = 120.0


@pytest.fixture
def cluster(stack_root: Path) -> Iterator[Cluster]:
    with nats_cluster(stack_root / f"cluster-{time.monotonic_ns()}") as c:
        yield c


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_stack_survives_leader_kill_follower_kill_and_partition(
    cluster: Cluster, settings: Settings, pki: TestPKI
) -> None:
    files = pki.server_files(pki.leaf("*.cluster.test", dns=("*.cluster.test",), org="Cluster Org"))
    zone = SuffixZone("cluster.test", {"A": ["127.0.0.1"]})
    with tls_server(server_context(*files)) as port, dns_server(zone) as nameserver:
        on_cluster = replace(
            settings, nats_url=cluster.urls, stream_replicas=3,
            dns_servers=(f"{nameserver[0]}:{nameserver[1]}",), probe_handshake_timeout_s=5,
        )  # fmt: skip
        async with running_stack(on_cluster, units=UNITS) as stack:
            info = await wait_stream_current(cluster, busmod.STREAM)
            assert info.config.num_replicas == 3
            observations = await wait_stream_current(cluster, observation_stream.STREAM)
            assert observations.config.num_replicas == 3  # probe results travel here
            load = Load(stack, "cluster.test", port)
            adding = asyncio.create_task(load.run())
            try:
                await asyncio.sleep(2)
                leader = info.cluster.leader if info.cluster else None
                assert leader
                cluster.kill(leader)  # 1. the stream leader crashes
                await asyncio.sleep(4)
                cluster.restart(leader)
                info = await wait_stream_current(cluster, busmod.STREAM)
                assert info.cluster is not None and info.cluster.replicas
                follower = info.cluster.replicas[0].name
                cluster.kill(follower)  # 2. a follower crashes
                await asyncio.sleep(4)
                cluster.restart(follower)
                info = await wait_stream_current(cluster, busmod.STREAM)
                assert info.cluster is not None
                cut = info.cluster.leader
                cluster.partition(cut)  # 3. the (new) leader is cut off; its clients stay on it
                await wait_stream_current(cluster, busmod.STREAM, without=cut)
                await asyncio.sleep(4)
                cluster.heal()
                await wait_stream_current(cluster, busmod.STREAM)
                await asyncio.sleep(2)
            finally:
                load.stop()
                await asyncio.wait_for(adding, 60)
            assert len(load.added) >= 10 * BATCH

            seen = await assert_settled(stack, load.added, timeout=SETTLE_S)
            assert set(seen.values()) == {"SECURE"}, {h: v for h, v in seen.items() if v != "SECURE"}
        await assert_rebuilds_equal_live(settings.database_url)
