"""Instances as event streams.

`load` folds an instance's stream; `record` appends new events at the version it was
loaded at (a concurrent writer makes it fail, never overwrite). The rows listing and the
due scan read are the `views` projection's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import Payload, decode
from certwatch.hosting import lifecycle
from certwatch.platform.eventlog import Conn, Cursor, EventLog
from certwatch.platform.events import NewEvent

Change = tuple[lifecycle.Instance | None, int, Sequence[Payload]]
"""(instance as loaded or None for a new one, its stream version, the events to add)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    instances: list[lifecycle.Instance]
    cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class Loaded:
    instance: lifecycle.Instance
    version: int


async def load(log: EventLog, conn: Conn, instance_id: str, *, for_update: bool = False) -> Loaded | None:
    events = await log.read_stream(hc.stream_id(instance_id), conn=conn, for_update=for_update)
    if not events:
        return None
    return Loaded(lifecycle.fold([decode(e) for e in events]), events[-1].stream_version)


async def record(log: EventLog, conn: Conn, changes: Sequence[Change], metadata: dict[str, str]) -> Recorded:
    """Append every change in one transaction (the caller's): the instances after it, and
    where the last event landed (for the caller to wait for the views, after its commit)."""
    batch: list[tuple[str, Sequence[NewEvent], int | None]] = []
    after: list[lifecycle.Instance] = []
    for instance, version, events in changes:
        state = instance
        for e in events:
            state = lifecycle.evolve(state, e)
        assert state is not None
        after.append(state)
        batch.append((hc.stream_id(state.instance_id), [e.new_event(metadata=metadata) for e in events],
                      version))  # fmt: skip
    appended = await log.append_batch(batch, conn=conn)
    return Recorded(after, max((a.cursor for a in appended), default=None))


async def unclaimed(conn: Conn, order_urls: Sequence[str]) -> list[str]:
    """The URLs no instance has recorded, in the order given."""
    cur = await conn.execute(
        "SELECT order_url FROM hosting_orders WHERE order_url = ANY(%s)", (list(order_urls),)
    )
    claimed = {r[0] for r in await cur.fetchall()}
    return [u for u in order_urls if u not in claimed]
