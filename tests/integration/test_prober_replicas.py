"""Prober replicas over one schedule: shared work, no double probes, no lost domains.

Each Scheduler has its own connection pool, so the claim race runs through PostgreSQL as it
does between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import orjson
import pytest

from certwatch.contracts import domain as dc
from certwatch.platform import db, telemetry
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.observation_stream import Outgoing
from certwatch.platform.projection import catch_up
from certwatch.prober.options import ProbeOptions
from certwatch.prober.schedule import SCHEDULE
from certwatch.prober.scheduler import Scheduler
from tests.support.pki import TestPKI
from tests.support.stack import wait_for
from tests.support.tls_server import free_port_on, server_context, tls_server

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def pki() -> Iterator[TestPKI]:
    with TestPKI() as p:
        yield p


def _options(
    pki: TestPKI, hosts: list[str], port: int, address: str, *, handshake: float = 2.0
) -> ProbeOptions:
    return ProbeOptions(
        connect_timeout=2.0, handshake_timeout=handshake, overall=handshake + 3.0,
        resolve={(h, port): [address] for h in hosts}, ca_file=pki.ca_file,
        allow_networks=LOOPBACK, check_ocsp=False,
    )  # fmt: skip


async def _schedule(event_log: EventLog, hosts: list[str], port: int) -> None:
    """Enable monitoring of every host: the schedule projection makes them all due now."""
    account_id = str(uuid.uuid4())
    batch = []
    for host in hosts:
        domain_id = str(uuid.uuid4())
        data = {"domain_id": domain_id, "account_id": account_id, "host": host, "port": port,
                "generation": 1, "period_start": "2026-01-01", "service_ends_on": "2026-12-31",
                "enabled_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
        batch.append((dc.stream_id(domain_id), [NewEvent(dc.MONITORING_ENABLED, data)], None))
    await event_log.append_batch(batch)
    await catch_up(event_log, SCHEDULE)


class Published:
    """What the replicas publish to the observation stream, in order."""

    def __init__(self) -> None:
        self.probes: list[dict[str, Any]] = []

    async def __call__(self, observations: Sequence[Outgoing]) -> None:
        self.probes.extend(orjson.loads(o.body) for o in observations)


@pytest.fixture
def published() -> Published:
    return Published()


async def _probes(published: Published) -> list[dict[str, Any]]:
    return list(published.probes)


@contextlib.asynccontextmanager
async def _running(
    database_url: str, options: ProbeOptions, name: str, published: Published, **kw: Any
) -> AsyncIterator[tuple[Scheduler, asyncio.Task[None]]]:
    """A Scheduler on its own pool, as a separate replica would be."""
    pool = await db.open_pool(database_url, max_size=4)
    settings: dict[str, Any] = {"concurrency": 16, "idle_poll_s": 0.02, "flush_s": 0.01, **kw}
    scheduler = Scheduler(
        EventLog(pool), options, published, interval_s=3600, jitter_s=0, worker_id=name, **settings
    )
    task = asyncio.create_task(scheduler.run())
    try:
        yield scheduler, task
    finally:
        scheduler.stop()
        if not task.done():
            await asyncio.wait_for(task, 10)
        await pool.close()


async def test_two_replicas_share_200_domains_and_probe_each_once_a_round(
    database_url: str, event_log: EventLog, pki: TestPKI, published: Published
) -> None:
    hosts = [f"d{i}.replicas.test" for i in range(200)]
    leaf = pki.leaf("replicas.test", dns=("*.replicas.test",))
    with tls_server(server_context(*pki.server_files(leaf))) as port:
        await _schedule(event_log, hosts, port)
        options = _options(pki, hosts, port, "127.0.0.1")
        async with (
            _running(database_url, options, "a", published) as (a, _),
            _running(database_url, options, "b", published) as (b, _),
        ):
            for round_no in (1, 2):

                async def complete(n: int = round_no) -> bool:
                    return len(await _probes(published)) >= n * len(hosts)

                await wait_for(complete)
                await asyncio.sleep(0.3)  # a double probe would land now
                per_domain = Counter(p["host"] for p in await _probes(published))
                assert set(per_domain) == set(hosts)
                assert set(per_domain.values()) == {round_no}, per_domain.most_common(3)
                if round_no == 1:
                    async with event_log.pool.connection() as conn:  # round 2 is due now
                        await conn.execute("UPDATE probe_schedule SET next_due = now()")
        assert a.probed > 0 and b.probed > 0, (a.probed, b.probed)
        assert a.probed + b.probed == 2 * len(hosts)


def _silent(host: str, port: int) -> socket.socket:
    """Completes TCP handshakes (the kernel's backlog) and never says a word."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, port))
    sock.listen(64)
    return sock


async def test_a_prober_that_dies_mid_batch_loses_no_domain(
    database_url: str, event_log: EventLog, pki: TestPKI, published: Published
) -> None:
    """Replica A's probes hang (its route leads to a silent server); A is cancelled mid-flight.
    Replica B, routed to the real server, takes every domain once A's lease runs out."""
    hosts = [f"d{i}.lease.test" for i in range(20)]
    port = free_port_on(("127.0.0.1", "127.0.0.2"))
    leaf = pki.leaf("lease.test", dns=("*.lease.test",))
    with _silent("127.0.0.2", port), tls_server(server_context(*pki.server_files(leaf)), port=port):
        await _schedule(event_log, hosts, port)
        hanging = _options(pki, hosts, port, "127.0.0.2", handshake=30.0)
        async with _running(database_url, hanging, "a", published, lease_s=1.0, concurrency=64) as (
            _,
            a_task,
        ):

            async def all_claimed() -> bool:
                async with event_log.pool.connection() as conn:
                    cur = await conn.execute("SELECT count(*) FROM probe_schedule WHERE claimed_by = 'a'")
                    row = await cur.fetchone()
                return row is not None and row[0] == len(hosts)

            await wait_for(all_claimed)
            claimed_at = time.monotonic()
            a_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await a_task
        assert await _probes(published) == []
        async with _running(database_url, _options(pki, hosts, port, "127.0.0.1"), "b", published):

            async def all_probed() -> bool:
                return len(await _probes(published)) >= len(hosts)

            await wait_for(all_probed)
            assert time.monotonic() - claimed_at >= 0.9  # not before A's lease ended
            await asyncio.sleep(0.2)
        probes = await _probes(published)
        assert Counter(p["host"] for p in probes) == Counter(hosts)
        assert {p["prober"] for p in probes} == {"b"}
        assert {p["result"]["endpoints"][0]["phase"] for p in probes} == {"done"}


async def test_a_prober_that_outlives_its_lease_records_nothing(
    database_url: str, event_log: EventLog, pki: TestPKI, published: Published
) -> None:
    """A's probes take longer than its lease; B re-claims and records; A's late results are
    dropped, so the round still has exactly one result per domain."""
    hosts = [f"d{i}.zombie.test" for i in range(10)]
    port = free_port_on(("127.0.0.1", "127.0.0.2"))
    leaf = pki.leaf("zombie.test", dns=("*.zombie.test",))
    with _silent("127.0.0.2", port), tls_server(server_context(*pki.server_files(leaf)), port=port):
        await _schedule(event_log, hosts, port)
        slow = _options(pki, hosts, port, "127.0.0.2", handshake=1.5)
        # A sleeps on its in-flight probes instead of claiming again: it is the paused replica
        paused = {"lease_s": 0.5, "concurrency": 64, "idle_poll_s": 5.0}
        async with _running(database_url, slow, "a", published, **paused) as (a, _):
            await asyncio.sleep(0.7)  # A holds every claim, then its lease passes mid-probe
            async with _running(database_url, _options(pki, hosts, port, "127.0.0.1"), "b", published) as (
                b,
                _,
            ):

                async def settled() -> bool:
                    return b.probed == len(hosts)

                await wait_for(settled)
                await asyncio.sleep(1.5)  # A's handshakes time out and try to record now
        probes = await _probes(published)
        assert Counter(p["host"] for p in probes) == Counter(hosts)
        assert {p["prober"] for p in probes} == {"b"}
        assert a.probed == 0


class _SlowFirstWrite(Published):
    """The first round's publish waits until released: a write that takes its time."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, observations: Sequence[Outgoing]) -> None:
        if not self.writing.is_set():
            self.writing.set()
            await asyncio.wait_for(self.release.wait(), 20)
        await super().__call__(observations)


async def test_probing_goes_on_while_a_round_is_written(
    database_url: str, event_log: EventLog, pki: TestPKI
) -> None:
    """Slots freed by finished probes are claimed again while the recorder writes: the probe
    loop used to wait for each round's write, every slot idle meanwhile."""
    hosts = [f"d{i}.pipeline.test" for i in range(40)]
    leaf = pki.leaf("pipeline.test", dns=("*.pipeline.test",))
    slow = _SlowFirstWrite()
    with tls_server(server_context(*pki.server_files(leaf))) as port:
        await _schedule(event_log, hosts, port)
        async with _running(database_url, _options(pki, hosts, port, "127.0.0.1"), "a", slow, concurrency=4):
            await asyncio.wait_for(slow.writing.wait(), 10)

            async def claimed_beyond_the_round() -> bool:  # the round written holds at most 4
                async with event_log.pool.connection() as conn:
                    cur = await conn.execute("SELECT count(*) FROM probe_schedule WHERE claimed_by = 'a'")
                    row = await cur.fetchone()
                return row is not None and row[0] >= 12

            await wait_for(claimed_beyond_the_round)
            slow.release.set()

            async def all_published() -> bool:
                return len(slow.probes) >= len(hosts)

            await wait_for(all_published)
            await asyncio.sleep(0.2)
        assert Counter(p["host"] for p in slow.probes) == Counter(hosts)


async def test_an_unrecorded_probe_passes_the_enables_trace_on_as_it_is(
    database_url: str,
    event_log: EventLog,
    pki: TestPKI,
    published: Published,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no span recorded, no span is made for a probe: its observation carries the
    enable request's traceparent unchanged (the trace id is what joins request and verdict)."""
    telemetry.setup("test", otlp_endpoint=None)  # the SDK's provider, as every service has
    monkeypatch.setattr(telemetry._SAMPLER, "taken", False)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    leaf = pki.leaf("traced.test", dns=("traced.test",))
    with tls_server(server_context(*pki.server_files(leaf))) as port:
        domain_id = str(uuid.uuid4())
        data = {"domain_id": domain_id, "account_id": str(uuid.uuid4()), "host": "traced.test", "port": port,
                "generation": 1, "period_start": "2026-01-01", "service_ends_on": "2026-12-31",
                "enabled_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
        enabled = NewEvent(dc.MONITORING_ENABLED, data, metadata={"traceparent": traceparent})
        await event_log.append_batch([(dc.stream_id(domain_id), [enabled], None)])
        await catch_up(event_log, SCHEDULE)
        async with _running(database_url, _options(pki, ["traced.test"], port, "127.0.0.1"), "a", published):

            async def probed() -> bool:
                return len(published.probes) >= 1

            await wait_for(probed)
    assert published.probes[0]["traceparent"] == traceparent
