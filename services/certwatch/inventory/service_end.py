"""Ends monitoring when a domain's 365 days are used up (the clock ran while disabled too)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from certwatch.contracts import domain as dc
from certwatch.inventory import domain as d
from certwatch.inventory import views
from certwatch.platform.errors import ConcurrencyConflict
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up_past

log = logging.getLogger(__name__)


class ServiceEndWorker:
    """Every `every_s`, ends the domains whose period is over; safe to run in every replica."""

    def __init__(self, event_log: EventLog, *, every_s: float = 600.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self._log = event_log
        self._every = every_s
        self._now = clock
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except psycopg.OperationalError as exc:
                log.warning("service-end check failed", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._every)

    async def run_once(self) -> int:
        today = self._now().date()
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT domain_id FROM inventory_domains WHERE enabled AND service_ends_on < %s LIMIT 10000",
                (today,),
            )
            due = [str(r[0]) for r in await cur.fetchall()]
        ended, last = 0, None
        for domain_id in due:
            stream = dc.stream_id(domain_id)
            recorded = await self._log.read_stream(stream)
            state = d.fold([(e.type, e.data) for e in recorded])
            if state is None:
                continue
            events = d.end_service(state, today)
            if not events:
                continue
            try:
                appended = await self._log.append(
                    stream, [NewEvent(t, x) for t, x in events], expected_version=state.version
                )
                ended, last = ended + 1, appended[-1].cursor
            except ConcurrencyConflict:
                continue  # someone changed it meanwhile; the next pass decides again
        if last is not None:
            await catch_up_past(self._log, views.DOMAIN_VIEW, last)
            log.info("monitoring service ended for %d domain(s)", ended)
        return ended
