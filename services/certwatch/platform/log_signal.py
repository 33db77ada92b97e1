""" "The log advanced": one core-NATS message a relayed batch, which wakes projection runners.

A runner reads its events from PostgreSQL, never from the bus, so the bus only has to say
when to look. A JetStream consumer a projection did that with one message an event for every
projection (about 100 µs of client CPU each, the biggest share of several services' CPU at
10,000 domains); this is one message a batch of up to 512 events, naming the event types it
holds so a runner wakes only for its own. A signal lost (a reconnect) costs at most a
runner's idle poll, after which it reads the log anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from certwatch.platform.events import JsonEvent, RecordedEvent

SUBJECT = "cw.log.advanced"


def encode(events: Iterable[RecordedEvent | JsonEvent]) -> bytes:
    """The batch's event types, sorted and comma-separated (type names hold no commas)."""
    return ",".join(sorted({e.type for e in events})).encode()


def types(payload: bytes) -> frozenset[str]:
    return frozenset(payload.decode().split(",")) if payload else frozenset()
