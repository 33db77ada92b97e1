"""The stack through a PostgreSQL primary restart, under load.

PostgreSQL is stopped (a fast shutdown: every connection is cut, as a failover or an
operator's restart does) while domains are being added and probed, kept down a few
seconds, and started again on the same port and data. The services must re-establish
their connections and resume by themselves: every domain added before or after has its
verdict (exactly one), a call made while the database was down failed as a whole, no
service lags, the stream holds each event once, and each projection equals its rebuild.
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
from tests.support.settled import assert_rebuilds_equal_live, assert_settled
from tests.support.stack import running_stack

DOWN_S = 4.0


@pytest.fixture
def primary(stack_root: Path) -> Iterator[tuple[Kept, str]]:
    """A PostgreSQL of this test's own, since it is restarted; and its URL."""
    data, port = stack_root / f"primary-{time.monotonic_ns()}", localstack.free_port()
    pg = kept_postgres(data, port)
    pg.start()
    try:
        yield pg, localstack.Postgres(data, port).url
    finally:
        pg.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_services_resume_after_a_primary_restart(
    primary: tuple[Kept, str], settings: Settings, pki: TestPKI
) -> None:
    server, url = primary
    with wildcard_targets(settings, pki, "restart.test", url) as (own, port):
        async with running_stack(own, units=UNITS) as stack:
            load = Load(stack, "restart.test", port, tolerate_failures=True)
            adding = asyncio.create_task(load.run())
            try:
                await asyncio.sleep(3)
                before = len(load.added)
                server.stop()
                await asyncio.sleep(DOWN_S)
                server.start()
                await asyncio.sleep(6)
            finally:
                load.stop()
                await asyncio.wait_for(adding, 60)
            assert before >= BATCH and len(load.added) > before + BATCH  # added before, and after
            assert load.failed  # the outage was felt by the callers
            # A call that failed is atomic: none of its domains, or (the connection lost during
            # COMMIT itself, which no client can tell from a rollback) all of them.
            present = set(await statuses(stack))
            for hosts in load.failed:
                assert {h in present for h in hosts} in ({True}, {False}), hosts
            committed = [h for hosts in load.failed if hosts[0] in present for h in hosts]
            seen = await assert_settled(stack, [*load.added, *committed], timeout=120)
            assert set(seen.values()) == {"SECURE"}, {h: v for h, v in seen.items() if v != "SECURE"}
        await assert_rebuilds_equal_live(url)
