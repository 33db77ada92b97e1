"""Consumer, projection and outbox lag as OpenTelemetry gauges, sampled by every service.

`certwatch.projection.lag` (attribute `projection`) and `certwatch.outbox.lag`: committed
events not yet applied or relayed, as `Ops.GetServiceStatus` counts them (capped, so a
sample stays cheap on a log of any size). `certwatch.worker.backlog` (attribute `worker`):
what each worker with a `backlog()` says waits for it, as `certwatch status` shows it (the
observation stream's consumer: observations not yet handled; schedulers: work overdue). It also
counts the appends made in callers' transactions that have committed (`EventLog.count_committed`).
A worker (`platform.service.Worker`) that samples
every `every_s` seconds: the alert rules shipped in the chart fire on these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from certwatch.platform import telemetry
from certwatch.platform.eventlog import EventLog
from certwatch.platform.ops_api import count_lag
from certwatch.platform.outbox import OutboxRelay
from certwatch.platform.projection import ProjectionRunner
from certwatch.platform.sampler import Sampler


class LagSampler(Sampler):
    def __init__(
        self,
        event_log: EventLog,
        relay: OutboxRelay,
        runners: Sequence[ProjectionRunner],
        workers: Sequence[Any] = (),
        *,
        every_s: float = 15.0,
    ) -> None:
        super().__init__(every_s=every_s)
        self._log = event_log
        self._relay = relay
        self._runners = runners
        self._workers = [w for w in workers if hasattr(w, "backlog")]
        self._projection = telemetry.gauge(
            "certwatch.projection.lag", "{event}", "events committed, not yet applied by the projection"
        )
        self._outbox = telemetry.gauge(
            "certwatch.outbox.lag", "{event}", "events committed, not yet relayed to JetStream"
        )
        self._backlog = telemetry.gauge("certwatch.worker.backlog", "{item}", "work waiting for a worker")

    async def sample(self) -> None:
        async with self._log.pool.connection(timeout=5) as conn:
            for runner in self._runners:
                p = runner.projection
                self._projection.set(
                    await count_lag(conn, "checkpoints", p.name, p.event_types), {"projection": p.name}
                )
            self._outbox.set(await count_lag(conn, "outbox_relay", self._relay.name, None))
            for worker in self._workers:
                waiting, _ = await worker.backlog(conn)
                self._backlog.set(waiting, {"worker": type(worker).__name__.lower()})
            await self._log.count_committed(conn)
