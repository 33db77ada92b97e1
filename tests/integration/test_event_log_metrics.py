"""Appends are counted by event type once committed: an append rolled back (its caller's
transaction, or the savepoint it ran in) never counts, nor does a duplicate."""

from __future__ import annotations

import uuid

import pytest

from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from tests.support.metric_reader import totals

A, B = frozenset({("event.type", "CountedA")}), frozenset({("event.type", "CountedB")})


class _Undo(Exception):
    """Raised to roll a transaction (or savepoint) back."""


def _events(n: int, kind: str = "CountedA") -> list[NewEvent]:
    return [NewEvent(kind, {"n": i}) for i in range(n)]


def _counted(before: dict[frozenset[tuple[str, str]], float]) -> tuple[float, float]:
    now = totals("certwatch.eventlog.appended")
    return now.get(A, 0) - before.get(A, 0), now.get(B, 0) - before.get(B, 0)


async def test_appends_count_after_commit_only(event_log: EventLog) -> None:
    before = totals("certwatch.eventlog.appended")
    mine = f"count-{uuid.uuid4()}"
    first = _events(1)
    await event_log.append(mine, first, expected_version=0)
    await event_log.append(mine, _events(1, "CountedB"), expected_version=None)  # on the known head
    await event_log.append_batch([(f"count-{uuid.uuid4()}", _events(1), None) for _ in range(2)])
    await event_log.append(f"count-{uuid.uuid4()}", _events(64), expected_version=0)  # by COPY
    again = await event_log.append(mine, first, expected_version=None)  # a retry: a duplicate
    assert again[0].duplicate
    assert _counted(before) == (1 + 2 + 64, 1)  # the log committed these itself: counted at once

    pool = event_log.pool
    async with pool.connection() as conn:
        async with conn.transaction():  # committed, with a savepoint rolled back inside
            await event_log.append(f"count-{uuid.uuid4()}", _events(3), expected_version=0, conn=conn)
            await event_log.append(
                f"count-{uuid.uuid4()}", _events(64, "CountedB"), expected_version=0, conn=conn
            )
            with pytest.raises(_Undo):
                async with conn.transaction():
                    await event_log.append(f"count-{uuid.uuid4()}", _events(2), expected_version=0, conn=conn)
                    raise _Undo
            async with pool.connection() as other:  # still running: not counted yet
                await event_log.count_committed(other)
            assert _counted(before) == (67, 1)
        with pytest.raises(_Undo):
            async with conn.transaction():  # rolled back whole
                await event_log.append(f"count-{uuid.uuid4()}", _events(5), expected_version=0, conn=conn)
                await event_log.append(f"count-{uuid.uuid4()}", _events(64), expected_version=0, conn=conn)
                raise _Undo
        await event_log.count_committed(conn)
    assert _counted(before) == (67 + 3, 1 + 64)  # N = 135 counted of the 206 appended, 71 rolled back

    async with pool.connection() as conn:
        await event_log.count_committed(conn)  # each append settles once
    assert _counted(before) == (70, 65)
