"""The account's quota stream under a lock: every writer that reserves, consumes or releases
units takes it first, so a reservation is decided on the latest count and appends need no
expected version (a purchase, which only adds units, may skip it).

The state is folded from a snapshot (`inventory_quota_snapshots`) plus the events after it,
and the snapshot moves forward in the same transaction: an account that enabled 100,000
domains has a quota stream of 200,000 events, and each enable still reads only the few the
previous writer appended.
"""

from __future__ import annotations

import uuid

from certwatch.contracts import quota as qc
from certwatch.inventory import domain as d
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.rules import quota

# Bump when `domain.quota_evolve` changes meaning: older snapshots are then folded anew.
RULES = 2


async def lock(conn: Conn, account_id: uuid.UUID | str) -> None:
    """Hold the account's quota until the transaction ends. Take it before appending to any
    stream (an append waits on other writers' uncommitted rows: lock first, never after)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (qc.stream_id(account_id),))


async def load(
    event_log: EventLog, conn: Conn, account_id: uuid.UUID | str, *, advance: bool = True
) -> quota.QuotaState:
    """The account's quota as committed, from the snapshot forward, moving the snapshot up
    (unless not `advance`: moving it locks the snapshot's row until the transaction ends,
    which a long transaction reading without the quota lock must not do to the others).

    Safe for any reader, locked or not: a stream's committed versions are always a gapless
    prefix (a version is numbered after the one before it committed), so the state at a
    version never changes, and a snapshot only ever moves forward.
    """
    cur = await conn.execute(
        "SELECT version, purchased, consumed, reserved FROM inventory_quota_snapshots"
        " WHERE account_id = %s AND rules = %s",
        (str(account_id), RULES),
    )
    row = await cur.fetchone()
    version, state = (row[0], quota.QuotaState(row[1], row[2], row[3])) if row else (0, quota.QuotaState())
    events = await event_log.read_stream(qc.stream_id(account_id), after_version=version, conn=conn)
    for event in events:
        state = d.quota_evolve(state, event.type, event.data)
    if events and advance:
        await conn.execute(
            "INSERT INTO inventory_quota_snapshots (account_id, version, rules, purchased, consumed, reserved)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account_id) DO UPDATE SET version = excluded.version,"
            " rules = excluded.rules, purchased = excluded.purchased, consumed = excluded.consumed,"
            " reserved = excluded.reserved WHERE inventory_quota_snapshots.version < excluded.version"
            " OR inventory_quota_snapshots.rules <> excluded.rules",
            (str(account_id), events[-1].stream_version, RULES, state.purchased_units, state.consumed_units,
             state.reserved_units),
        )  # fmt: skip
    return state


async def load_locked(event_log: EventLog, conn: Conn, account_id: uuid.UUID | str) -> quota.QuotaState:
    await lock(conn, account_id)
    return await load(event_log, conn, account_id)
