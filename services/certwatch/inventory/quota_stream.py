"""The account's quota stream under a lock: every writer that reserves, consumes or releases
units takes it first, so a reservation is decided on the latest count and appends need no
expected version (a purchase, which only adds units, may skip it)."""

from __future__ import annotations

import uuid

from certwatch.contracts import quota as qc
from certwatch.inventory import domain as d
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.rules import quota


async def lock(conn: Conn, account_id: uuid.UUID | str) -> None:
    """Hold the account's quota until the transaction ends. Take it before appending to any
    stream (an append waits on other writers' uncommitted rows: lock first, never after)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (qc.stream_id(account_id),))


async def load_locked(event_log: EventLog, conn: Conn, account_id: uuid.UUID | str) -> quota.QuotaState:
    await lock(conn, account_id)
    events = await event_log.read_stream(qc.stream_id(account_id), conn=conn)
    return d.quota_from([(e.type, e.data) for e in events])
