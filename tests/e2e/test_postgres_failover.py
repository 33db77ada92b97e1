"""The stack through a PostgreSQL failover, under load: the primary crashes and its
synchronous streaming replica is promoted.

The services are given both servers in one libpq URL (`host1:port1,host2:port2` with
`target_session_attrs=read-write`), as a client of a managed or operator-run pair is given a
writer endpoint: they reconnect to whichever server now takes writes, by themselves. Every
domain added before or after has exactly one verdict, a call that failed did nothing or all of
it, nothing lags, the stream holds each event once, and each projection equals its rebuild,
now on the promoted server. (The restart of a single primary is test_postgres_restart.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwatch.platform import localstack
from certwatch.platform.config import Settings
from tests.support.domain_load import BATCH, UNITS, Load, statuses, wildcard_targets
from tests.support.keeper import Kept, kept_postgres
from tests.support.pki import TestPKI
from tests.support.replica import base_backup, promote, synchronous
from tests.support.settled import assert_rebuilds_equal_live, assert_settled
from tests.support.stack import running_stack


@pytest.fixture
def pair(stack_root: Path) -> Iterator[tuple[Kept, str, str, str]]:
    """A primary and its synchronous streaming replica of this test's own; (the primary's
    keeper, its URL, the replica's URL, the URL naming both)."""
    stamp = time.monotonic_ns()
    primary_dir, replica_dir = stack_root / f"pair-{stamp}-a", stack_root / f"pair-{stamp}-b"
    ports = localstack.free_port(), localstack.free_port()
    primary = kept_postgres(primary_dir, ports[0])
    primary.start()
    replica: Kept | None = None
    try:
        base_backup(ports[0], replica_dir)
        replica = kept_postgres(replica_dir, ports[1])
        replica.start()
        urls = [localstack.Postgres(d, p).url for d, p in zip((primary_dir, replica_dir), ports, strict=True)]
        synchronous(urls[0])
        both = f"postgresql://certwatch@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/certwatch"
        yield primary, urls[0], urls[1], f"{both}?target_session_attrs=read-write"
    finally:
        for server in (replica, primary):
            if server is not None:
                server.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_services_carry_on_after_the_primary_fails_over_to_its_replica(
    pair: tuple[Kept, str, str, str], settings: Settings, pki: TestPKI
) -> None:
    primary, _, replica_url, url = pair
    with wildcard_targets(settings, pki, "failover.test", url) as (own, port):
        async with running_stack(own, units=UNITS) as stack:
            load = Load(stack, "failover.test", port, tolerate_failures=True)
            adding = asyncio.create_task(load.run())
            try:
                await asyncio.sleep(3)
                before = len(load.added)
                primary.kill()  # a crash: no shutdown checkpoint, connections reset
                await asyncio.to_thread(promote, replica_url)
                await asyncio.sleep(6)
            finally:
                load.stop()
                await asyncio.wait_for(adding, 60)
            assert before >= BATCH and len(load.added) > before + BATCH  # added before, and after
            present = set(await statuses(stack))
            assert set(load.added) <= present  # every acknowledged add survived the failover
            for hosts in load.failed:  # a call that failed is atomic (see test_postgres_restart.py)
                assert {h in present for h in hosts} in ({True}, {False}), hosts
            committed = [h for hosts in load.failed if hosts[0] in present for h in hosts]
            seen = await assert_settled(stack, [*load.added, *committed], timeout=120)
            assert set(seen.values()) == {"SECURE"}, {h: v for h, v in seen.items() if v != "SECURE"}
        await assert_rebuilds_equal_live(replica_url)
