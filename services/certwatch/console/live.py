"""Live status for the pages: server-sent events, woken by the verdicts on the bus.

Any `status` event on NATS wakes every open stream; each re-reads its own rows through the
gRPC API (scoped to its session) and sends only those that changed. A stream re-reads every
`POLL_S` even without a wake (the bus is the fast path, not the truth) and ends after
`MAX_STREAM_S`; the browser's EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from certwatch.platform import bus as busmod

log = logging.getLogger(__name__)

POLL_S = 2.0
SETTLE_S = 0.2  # after a wake: let the inventory's view apply the verdict first
MAX_STREAM_S = 600.0
STATUS_SUBJECT = "cw.events.status.>"


class Pulse:
    """A beat every waiter sees: `wait` returns at the next beat or after `timeout`."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closing = False

    def beat(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
            return True
        return False

    async def subscribe(self, bus: busmod.Bus | None) -> None:
        if bus is None:
            return

        async def on_status(_msg: object) -> None:
            self.beat()

        await bus.nc.subscribe(STATUS_SUBJECT, cb=on_status)


def sse(event: str, html: str) -> str:
    """One server-sent event; each line of the fragment is its own `data:` line."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


async def stream(
    pulse: Pulse,
    read: Callable[[], Awaitable[dict[str, str]]],
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Events for every fragment (name -> HTML) that differs from the last one sent; the
    first read sends them all (the page may have been rendered a moment before a change)."""
    sent: dict[str, str] = {}
    deadline = time.monotonic() + MAX_STREAM_S
    yield ": live\n\n"
    while time.monotonic() < deadline and not pulse.closing:
        try:
            current = await read()
        except Exception as exc:  # a service restarting: the next beat or poll tries again
            log.info("live read failed: %s", exc)
            current = sent
        for name, html in current.items():
            if sent.get(name) != html:
                yield sse(name, html)
        sent = current
        if await pulse.wait(POLL_S):
            await asyncio.sleep(SETTLE_S)
        if await disconnected():
            return
