"""Send one notification at most once: its idempotency key is recorded before anything is sent.

An alert is queued (`enqueue`) in the transaction that decided it, so a redelivered or replayed
event finds its key taken. A sender claims due rows under a lease (`claim_due`: `FOR UPDATE SKIP
LOCKED`, state `pending` committed before the send), so two replicas never take the same one. A
row still `pending` when its lease runs out was being sent when its sender died: whether it
arrived is unknown, so it is recorded failed (`expire_leases`) rather than risk sending it twice.
Each final outcome is appended once (`NotificationSent` / `NotificationFailed`, ids from the key);
a failure blocks nothing else. A rate limit (HTTP 429, a vendor's throttling code, the robot's
own window) defers a delivery without spending its attempts, until `Backoff.throttle_deadline`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg.types.json import Jsonb

from certwatch.contracts import notifications as nc
from certwatch.notifier.channels.base import Channel, Delivered, Delivery, Failed, Message, Retryable
from certwatch.notifier.metrics import record_deliveries
from certwatch.notifier.rules import Backoff, Key
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import stable_id

DEFAULT_BACKOFF = Backoff()
LEASE = timedelta(minutes=5)  # far longer than any send's timeouts
Outcome = Literal["sent", "retrying", "failed", "skipped"]
INTERRUPTED = "interrupted mid-send (its sender stopped): outcome unknown, not sent again"

_COLUMNS = (
    "key, event, domain_id, contact_id, channel, incident, account_id, attempts, message, created_at,"
    " traceparent"
)


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    attempts: int = 0
    detail: str = ""
    next_attempt_at: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this sender holds the lease of: attempt number `attempt`."""

    key: Key
    account_id: str
    attempt: int
    message: Message
    queued_at: datetime
    traceparent: str | None = None  # of the event that decided it


def _claimed(row: Sequence[Any]) -> Claimed:
    key = Key(row[1], row[2], row[3], row[4], row[5])
    return Claimed(key, row[6] or "", int(row[7]), Message(**row[8]), row[9], row[10])


@dataclasses.dataclass(frozen=True, slots=True)
class Queued:
    """A delivery to record: due at `at`."""

    key: Key
    account_id: str
    message: Message
    at: datetime
    traceparent: str | None = None


async def enqueue(conn: Conn, queued: Sequence[Queued], now: datetime) -> int:
    """Record each key as due (in the caller's transaction, one statement); how many were new."""
    if not queued:
        return 0
    cols = list(zip(*(
        (q.key.digest(), q.key.event, q.key.domain_id, q.key.contact_id, q.key.channel, q.key.incident,
         q.account_id, q.at, Jsonb(dataclasses.asdict(q.message)), q.traceparent)
        for q in queued
    ), strict=True))  # fmt: skip
    cur = await conn.execute(
        "INSERT INTO notifier_deliveries (key, event, domain_id, contact_id, channel, incident, account_id,"
        " next_attempt_at, message, traceparent, state, attempts, created_at, updated_at)"
        " SELECT *, 'queued', 0, %s::timestamptz, %s::timestamptz FROM unnest(%s::text[], %s::text[], %s::text[],"
        " %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::jsonb[], %s::text[])"
        " ON CONFLICT (key) DO NOTHING RETURNING 1",
        (now, now, *(list(c) for c in cols)),
    )  # fmt: skip
    return len(await cur.fetchall())


async def claim_due(
    event_log: EventLog, now: datetime, limit: int, lease: timedelta = LEASE
) -> list[Claimed]:
    """Take up to `limit` due deliveries under a lease; rows another sender holds are skipped."""
    async with event_log.pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE notifier_deliveries SET state = 'pending', attempts = attempts + 1, lease_until = %s,"
            " updated_at = %s WHERE key IN (SELECT key FROM notifier_deliveries"
            "  WHERE state IN ('queued', 'retrying') AND next_attempt_at <= %s"
            "  ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) AND state IN ('queued', 'retrying')"
            f" RETURNING {_COLUMNS}",
            (now + lease, now, now, limit),
        )  # fmt: skip
        return [_claimed(row) for row in await cur.fetchall()]


async def expire_leases(event_log: EventLog, now: datetime) -> int:
    """Record as failed every delivery whose sender's lease ran out mid-send; the count."""
    async with event_log.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE notifier_deliveries SET state = 'failed', detail = %s, lease_until = NULL, updated_at = %s"
            f" WHERE state = 'pending' AND lease_until < %s RETURNING {_COLUMNS}",
            (INTERRUPTED, now, now),
        )  # fmt: skip
        rows = [_claimed(row) for row in await cur.fetchall()]
        await _append_outcomes(
            event_log, conn, [(c, Result("failed", c.attempt, INTERRUPTED)) for c in rows], now
        )
    return len(rows)


def _result(delivery: Delivery, claimed: Claimed, now: datetime, backoff: Backoff) -> Result:
    attempt = claimed.attempt
    if isinstance(delivery, Delivered):
        return Result("sent", attempt, delivery.vendor_id)
    detail = f"{delivery.code}: {delivery.message}"
    if isinstance(delivery, Retryable) and delivery.throttled:
        wait = backoff.throttled(delivery.retry_after, (now - claimed.queued_at).total_seconds())
        if wait is not None:  # the attempt is given back: a rate limit refuses nothing
            return Result("retrying", attempt - 1, f"throttled, {detail}", now + timedelta(seconds=wait))
        hours = backoff.throttle_deadline / 3600
        return Result("failed", attempt, f"gave up: throttled for over {hours:g} hours; last {detail}")
    if isinstance(delivery, Retryable):
        delay = backoff.delay(attempt, delivery.retry_after)
        if delay is not None:
            return Result("retrying", attempt, detail, now + timedelta(seconds=delay))
        detail = f"gave up after {attempt} attempts; last {detail}"
    return Result("failed", attempt, detail)


async def send(channel: Channel, claimed: Claimed) -> Delivery:
    """One attempt; a channel's bug becomes a failure instead of leaving the lease to run out."""
    try:
        return await channel.send(dataclasses.replace(claimed.message, delivery_id=claimed.key.digest()))
    except Exception as exc:
        return Failed("internal", type(exc).__name__)


async def finish(
    event_log: EventLog,
    claimed: Claimed,
    delivery: Delivery,
    now: datetime,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> Result:
    """Record the outcome of `claimed`'s attempt (and, if final, its event) while the lease is held."""
    [result] = await finish_many(event_log, [(claimed, delivery)], now, backoff)
    return result


async def finish_many(
    event_log: EventLog, attempts: Sequence[tuple[Claimed, Delivery]], now: datetime,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> list[Result]:  # fmt: skip
    """`finish` for a round of attempts, in one transaction (one commit, one append)."""
    results: list[Result] = []
    final: list[tuple[Claimed, Result]] = []
    async with event_log.pool.connection() as conn, conn.transaction():
        for claimed, delivery in attempts:
            result = _result(delivery, claimed, now, backoff)
            cur = await conn.execute(
                "UPDATE notifier_deliveries SET state = %s, detail = %s, next_attempt_at = %s, lease_until = NULL,"
                " attempts = %s, updated_at = %s WHERE key = %s AND state = 'pending' AND attempts = %s RETURNING 1",
                (result.outcome, result.detail[:500], result.next_attempt_at, result.attempts, now,
                 claimed.key.digest(), claimed.attempt),
            )  # fmt: skip
            if await cur.fetchone() is None:  # the lease ran out and the row was recorded failed meanwhile
                results.append(Result("failed", claimed.attempt, INTERRUPTED))
                continue
            results.append(result)
            if result.outcome in ("sent", "failed"):
                final.append((claimed, result))
        await _append_outcomes(event_log, conn, final, now)
    record_deliveries((c.key.channel, r.outcome) for (c, _), r in zip(attempts, results, strict=True))
    return results


async def _append_outcomes(
    event_log: EventLog, conn: Conn, outcomes: Sequence[tuple[Claimed, Result]], now: datetime
) -> None:
    batch = []
    for claimed, result in outcomes:
        k = claimed.key
        payload_type = nc.NotificationSent if result.outcome == "sent" else nc.NotificationFailed
        payload = payload_type(
            key=k.digest(), event=k.event, domain_id=k.domain_id, account_id=claimed.account_id,
            contact_id=k.contact_id, channel=k.channel, incident=k.incident, attempts=result.attempts, at=now,
            detail=result.detail[:500],
        )  # fmt: skip
        batch.append(
            (
                nc.stream_id(k.digest()),
                [payload.new_event(event_id=stable_id(payload.TYPE, k.digest()))],
                None,
            )
        )
    if batch:
        await event_log.append_batch(batch, conn=conn)


async def _claim_now(
    event_log: EventLog, key: Key, account_id: str, message: Message, now: datetime
) -> Claimed | None:
    """Record `key` and take its lease at once, or take back a due retry; None if it is not ours to send."""
    async with event_log.pool.connection() as conn, conn.transaction():
        await enqueue(conn, [Queued(key, account_id, message, now)], now)
        cur = await conn.execute(
            "UPDATE notifier_deliveries SET state = 'pending', attempts = attempts + 1, lease_until = %s,"
            " updated_at = %s WHERE key = %s AND state IN ('queued', 'retrying') AND next_attempt_at <= %s"
            f" RETURNING {_COLUMNS}",
            (now + LEASE, now, key.digest(), now),
        )  # fmt: skip
        row = await cur.fetchone()
    return None if row is None else _claimed(row)


async def deliver(
    event_log: EventLog,
    key: Key,
    channel: Channel,
    message: Message,
    now: datetime,
    backoff: Backoff = DEFAULT_BACKOFF,
    *,
    account_id: str = "",
) -> Result:
    """Send `message` over `channel` now (a test message, a digest sent by hand) unless `key` was
    sent, failed or is being sent; `skipped` then."""
    claimed = await _claim_now(event_log, key, account_id, message, now)
    if claimed is None:
        return Result("skipped")
    return await finish(event_log, claimed, await send(channel, claimed), now, backoff)
