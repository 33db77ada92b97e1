"""Consumer, projection and outbox lag as OpenTelemetry gauges, sampled by every service.

`certwatch.projection.lag` (attribute `projection`) and `certwatch.outbox.lag`: committed
events not yet applied or relayed, as `Ops.GetServiceStatus` counts them (capped, so a
sample stays cheap on a log of any size). A worker (`platform.service.Worker`) that samples
every `every_s` seconds: the alert rules shipped in the chart fire on these.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import psycopg
from opentelemetry.metrics import _Gauge as Gauge  # the synchronous gauge (API 1.45 exports it so)

from certwatch.platform import telemetry
from certwatch.platform.eventlog import EventLog
from certwatch.platform.ops_api import count_lag
from certwatch.platform.outbox import OutboxRelay
from certwatch.platform.projection import ProjectionRunner

log = logging.getLogger(__name__)


def _gauge(name: str, description: str) -> Gauge:
    return telemetry.metrics().create_gauge(name, unit="{event}", description=description)


class LagSampler:
    def __init__(
        self,
        event_log: EventLog,
        relay: OutboxRelay,
        runners: Sequence[ProjectionRunner],
        *,
        every_s: float = 15.0,
    ) -> None:
        self._log = event_log
        self._relay = relay
        self._runners = runners
        self._every_s = every_s
        self._stop = asyncio.Event()
        self._projection = _gauge(
            "certwatch.projection.lag", "events committed, not yet applied by the projection"
        )
        self._outbox = _gauge("certwatch.outbox.lag", "events committed, not yet relayed to JetStream")

    def stop(self) -> None:
        self._stop.set()

    async def sample(self) -> None:
        async with self._log.pool.connection(timeout=5) as conn:
            for runner in self._runners:
                p = runner.projection
                self._projection.set(
                    await count_lag(conn, "checkpoints", p.name, p.event_types), {"projection": p.name}
                )
            self._outbox.set(await count_lag(conn, "outbox_relay", self._relay.name, None))

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sample()
            except (psycopg.Error, TimeoutError, OSError) as exc:  # the database is down: no sample
                log.debug("lag sample skipped", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._every_s)
