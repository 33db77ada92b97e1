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
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from certwatch.platform import bus as busmod
from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.dns_server import SuffixZone, dns_server
from tests.support.nats_cluster import Cluster, nats_cluster, stream_info, wait_stream_current
from tests.support.pki import TestPKI
from tests.support.settled import assert_rebuilds_equal_live, lagging
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tls_server import server_context, tls_server

BATCH = 8  # domains per AddDomains call
PAUSE_S = 0.4  # between calls: load goes on through every failure
SETTLE_S = 120.0
UNITS = 80_000  # quota for every domain the load can add (10,000 batches)


@pytest.fixture
def cluster(stack_root: Path) -> Iterator[Cluster]:
    with nats_cluster(stack_root / f"cluster-{time.monotonic_ns()}") as c:
        yield c


class Load:
    """Adds and enables domains in batches until stopped; remembers the hosts it added."""

    def __init__(self, stack: Stack, port: int) -> None:
        self._stack = stack
        self._port = port
        self.hosts: list[str] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with self._stack.channel("inventory") as channel:
            inventory = inventory_pb2_grpc.InventoryStub(channel)
            for n in range(10_000):  # bounded; stopped long before
                if self._stop.is_set():
                    return
                hosts = [f"d{n:04d}x{i}.cluster.test" for i in range(BATCH)]
                added = await inventory.AddDomains(
                    pb.AddDomainsRequest(domains=",".join(f"{h}:{self._port}" for h in hosts), enable=True),
                    metadata=self._stack.metadata, timeout=30,
                )  # fmt: skip
                assert [r.error for r in added.results if not r.added] == []
                self.hosts += hosts
                await asyncio.sleep(PAUSE_S)

    def stop(self) -> None:
        self._stop.set()


async def _statuses(stack: Stack) -> dict[str, str]:
    seen: dict[str, str] = {}
    async with stack.channel("inventory") as channel:
        inventory = inventory_pb2_grpc.InventoryStub(channel)
        token = ""
        for _ in range(100):
            page = await inventory.ListDomains(
                pb.ListDomainsRequest(page_size=1000, page_token=token), metadata=stack.metadata, timeout=10
            )
            seen.update((d.host, d.status) for d in page.domains)
            token = page.next_page_token
            if not token:
                break
    return seen


async def _log_count(database_url: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM events")).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_stack_survives_leader_kill_follower_kill_and_partition(
    cluster: Cluster, database_url: str, pki: TestPKI
) -> None:
    files = pki.server_files(pki.leaf("*.cluster.test", dns=("*.cluster.test",), org="Cluster Org"))
    zone = SuffixZone("cluster.test", {"A": ["127.0.0.1"]})
    with tls_server(server_context(*files)) as port, dns_server(zone) as nameserver:
        settings = Settings(
            database_url=database_url, nats_url=cluster.urls, stream_replicas=3, log_format="text",
            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), ca_file=pki.ca_file,
            dns_servers=(f"{nameserver[0]}:{nameserver[1]}",),
            probe_interval_s=3600, probe_jitter_s=0, probe_connect_timeout_s=2,
            probe_handshake_timeout_s=5, shutdown_grace_s=3,
        )  # fmt: skip
        async with running_stack(settings, units=UNITS) as stack:
            info = await wait_stream_current(cluster, busmod.STREAM)
            assert info.config.num_replicas == 3
            load = Load(stack, port)
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
            assert len(load.hosts) >= 10 * BATCH

            async def settled() -> dict[str, str] | None:
                seen = await _statuses(stack)
                done = len(seen) == len(load.hosts) and "ENABLING" not in seen.values()
                return seen if done else None

            seen = await wait_for(settled, timeout=SETTLE_S, every=0.5)
            assert set(seen) == set(load.hosts)
            assert set(seen.values()) == {"SECURE"}, {h: s for h, s in seen.items() if s != "SECURE"}
            targets = {name: f"127.0.0.1:{s.port}" for name, s in stack.services.items()}

            behind: dict[str, int] = {}

            async def current() -> bool:
                behind.clear()
                behind.update(await lagging(targets, stack.metadata))
                return not behind

            await wait_for(current, timeout=SETTLE_S, every=0.5)  # on failure `behind` says what lags
            events = await _log_count(database_url)
            stored = await stream_info(cluster.urls.split(",")[0], busmod.STREAM)
            assert stored.state.messages == events  # each event once on the bus
        await assert_rebuilds_equal_live(database_url)
