"""Bootstrap of the prober service."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from certwatch.platform import observation_stream
from certwatch.platform.service import Parts, Runtime
from certwatch.prober import api, schedule
from certwatch.prober.scheduler import Scheduler
from certwatch.prober.settings import probe_options
from certwatch.prober.tls_chain import log_driver


async def build(rt: Runtime) -> Parts:
    log_driver()
    options = probe_options(rt.settings)
    assert rt.bus is not None, "the prober publishes observations: it needs JetStream"
    js, nc = rt.bus.js, rt.bus.nc
    await observation_stream.ensure_stream(js, replicas=rt.settings.stream_replicas)

    async def publish(observations: Sequence[observation_stream.Outgoing]) -> int:
        return await observation_stream.publish(nc, observations)

    scheduler = Scheduler(
        rt.event_log, options, publish, interval_s=rt.settings.probe_interval_s,
        jitter_s=rt.settings.probe_jitter_s, concurrency=rt.settings.probe_concurrency,
    )  # fmt: skip
    return Parts(
        registrations=[api.registration(api.ProberApi(options))],
        projections=[dataclasses.replace(schedule.SCHEDULE, after_commit=scheduler.wake)],
        workers=[scheduler],
        relay_standby_s=5.0,  # the probes need this CPU; another service relays events
    )
