"""A worker that samples gauges from the database every few seconds (lag, expiry buckets).

A sample the database cannot answer is skipped, not fatal: a gauge goes stale for a while,
and the alert on the outage itself comes from the health checks.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

import psycopg

log = logging.getLogger(__name__)


class Sampler(abc.ABC):
    def __init__(self, *, every_s: float) -> None:
        self._every_s = every_s
        self._stop = asyncio.Event()

    @abc.abstractmethod
    async def sample(self) -> None: ...

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sample()
            except (psycopg.Error, TimeoutError, OSError) as exc:  # the database is down: no sample
                log.debug("%s skipped", type(self).__name__, extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._every_s)
