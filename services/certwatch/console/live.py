"""Live status for the pages: server-sent events, woken by the verdicts on the bus.

The relay's "log advanced" signal of a batch holding a `status` event wakes every open stream
(one small message a batch, where the events themselves are one message each with their
whole payload); each re-reads its own rows through the gRPC API (scoped to its session) and
sends only those that changed. A stream re-reads every
`POLL_S` even without a wake (the bus is the fast path, not the truth) and ends after
`MAX_STREAM_S`; the browser's EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from nats.aio.msg import Msg

from certwatch.contracts import status as sc
from certwatch.platform import bus as busmod
from certwatch.platform import log_signal

log = logging.getLogger(__name__)

POLL_S = 2.0
SETTLE_S = 0.2  # after a wake: let the inventory's view apply the verdict first
MAX_STREAM_S = 600.0
STATUS_TYPES = frozenset({sc.DOMAIN_CLASSIFIED, sc.CERTIFICATE_CHAIN_OBSERVED, sc.OWNERSHIP_CHANGED})


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

        async def on_signal(msg: Msg) -> None:
            if STATUS_TYPES.intersection(log_signal.types(msg.data)):
                self.beat()

        await bus.nc.subscribe(log_signal.SUBJECT, cb=on_signal)


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
