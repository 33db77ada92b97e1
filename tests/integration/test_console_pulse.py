"""The console's live pages wake on the relay's "log advanced" signal of a batch that holds a
status event, and only then (a batch of other events leaves them to their poll)."""

from __future__ import annotations

import asyncio

from certwatch.console.live import Pulse
from certwatch.contracts import status as sc
from certwatch.platform import bus as busmod
from certwatch.platform import localstack, log_signal


async def test_a_batch_with_a_verdict_wakes_the_pages_and_others_do_not(nats_server: localstack.Nats) -> None:
    bus = await busmod.connect(nats_server.url, name="test-pulse")
    try:
        pulse = Pulse()
        await pulse.subscribe(bus)
        waiting = asyncio.create_task(pulse.wait(5.0))
        await asyncio.sleep(0.1)
        await bus.nc.publish(log_signal.SUBJECT, b"DomainAdded,MonitoringEnabled")
        await bus.nc.flush()
        assert not await pulse.wait(0.5)  # no status event in that batch
        await bus.nc.publish(log_signal.SUBJECT, f"DomainAdded,{sc.DOMAIN_CLASSIFIED}".encode())
        await bus.nc.flush()
        assert await asyncio.wait_for(waiting, 5.0)  # woken at once, long before its 5 s
    finally:
        await bus.close()
