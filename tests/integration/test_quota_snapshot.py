"""The quota snapshot: the same state as folding the whole stream, read in a few events."""

from __future__ import annotations

import uuid

from certwatch.contracts import quota as qc
from certwatch.inventory import domain as d
from certwatch.inventory import quota_stream
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent


def _ev(event_type: str, account: str, **data: object) -> NewEvent:
    return NewEvent(event_type, {"account_id": account, **data}, schema_version=d.schema_version(event_type))


async def _full(event_log: EventLog, account: str) -> object:
    events = await event_log.read_stream(qc.stream_id(account))
    return d.quota_from([(e.type, e.data) for e in events])


async def test_the_snapshot_follows_the_stream_and_reads_only_what_is_new(event_log: EventLog) -> None:
    account = str(uuid.uuid4())
    stream = qc.stream_id(account)
    await event_log.append(stream, [_ev(qc.QUOTA_PURCHASED, account, units=500)], expected_version=None)
    reserve = [
        _ev(qc.QUOTA_UNIT_RESERVED, account, domain_id=str(uuid.uuid4()), generation=1) for _ in range(300)
    ]
    await event_log.append(stream, reserve, expected_version=None)
    async with event_log.pool.connection() as conn, conn.transaction():
        state = await quota_stream.load_locked(event_log, conn, account)
    assert state == await _full(event_log, account) and state.reserved_units == 300
    async with event_log.pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT version, reserved FROM inventory_quota_snapshots WHERE account_id = %s", (account,)
        )).fetchone()  # fmt: skip
    assert row == (301, 300)

    await event_log.append(stream, [_ev(qc.QUOTA_UNIT_RELEASED, account, domain_id="x", generation=1),
                                    _ev(qc.QUOTA_UNIT_CONSUMED, account, domain_id="y", reserved=True)],
                           expected_version=None)  # fmt: skip
    reads: list[int] = []
    original = event_log.read_stream

    async def counting(stream_id: str, **kwargs: object) -> list[object]:
        found = await original(stream_id, **kwargs)  # type: ignore[arg-type]
        reads.append(len(found))
        return found  # type: ignore[return-value]

    event_log.read_stream = counting  # type: ignore[assignment, method-assign]
    async with event_log.pool.connection() as conn:
        state = await quota_stream.load(event_log, conn, account)
    event_log.read_stream = original  # type: ignore[method-assign]
    assert reads == [2]
    assert state == await _full(event_log, account)
    assert (state.purchased_units, state.consumed_units, state.reserved_units) == (500, 1, 298)


async def test_a_snapshot_of_other_rules_is_folded_anew(event_log: EventLog) -> None:
    account = str(uuid.uuid4())
    await event_log.append(
        qc.stream_id(account), [_ev(qc.QUOTA_PURCHASED, account, units=7)], expected_version=None
    )
    async with event_log.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO inventory_quota_snapshots VALUES (%s, 1, %s, 999, 0, 0)",
            (account, quota_stream.RULES - 1),
        )
        state = await quota_stream.load(event_log, conn, account)
    assert state.purchased_units == 7
