"""Send one notification at most once: claim its idempotency key in the delivery log, send, record.

The claim is the row itself (`INSERT ... ON CONFLICT DO NOTHING`), so of two replicas, or a
redelivered event, only one sends. A `retrying` row whose time has come is claimed back the same
way (a conditional UPDATE). A permanent failure is recorded `failed` and blocks nothing else.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool

from certwatch.notifier.channels.base import Channel, Delivered, Delivery, Failed, Message, Retryable
from certwatch.notifier.rules import Backoff, Key

DEFAULT_BACKOFF = Backoff()
Outcome = Literal["sent", "retrying", "failed", "skipped"]


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    attempts: int = 0
    detail: str = ""
    next_attempt_at: datetime | None = None


async def _claim(pool: AsyncConnectionPool[Any], key: Key, now: datetime) -> int | None:
    """The attempt number this caller may make, or None if the key is someone else's (or done)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO notifier_deliveries (key, event, domain_id, contact_id, channel, incident, state,"
            " attempts, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'pending', 1, %s, %s)"
            " ON CONFLICT (key) DO NOTHING RETURNING attempts",
            (key.digest(), key.event, key.domain_id, key.contact_id, key.channel, key.incident, now, now),
        )  # fmt: skip
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute(
                "UPDATE notifier_deliveries SET state = 'pending', attempts = attempts + 1, updated_at = %s"
                " WHERE key = %s AND state = 'retrying' AND next_attempt_at <= %s RETURNING attempts",
                (now, key.digest(), now),
            )  # fmt: skip
            row = await cur.fetchone()
    return None if row is None else int(row[0])


def _record(delivery: Delivery, attempt: int, now: datetime, backoff: Backoff) -> Result:
    if isinstance(delivery, Delivered):
        return Result("sent", attempt, delivery.vendor_id)
    detail = f"{delivery.code}: {delivery.message}"
    if isinstance(delivery, Retryable):
        delay = backoff.delay(attempt, delivery.retry_after)
        if delay is not None:
            return Result("retrying", attempt, detail, now + timedelta(seconds=delay))
        detail = f"gave up after {attempt} attempts; last {detail}"
    return Result("failed", attempt, detail)


async def deliver(
    pool: AsyncConnectionPool[Any],
    key: Key,
    channel: Channel,
    message: Message,
    now: datetime,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> Result:
    """Claim `key`, send `message` over `channel`, record the outcome; `skipped` if the key was taken."""
    attempt = await _claim(pool, key, now)
    if attempt is None:
        return Result("skipped")
    try:
        delivery = await channel.send(dataclasses.replace(message, delivery_id=key.digest()))
    except Exception as exc:  # a channel bug must not leave the key pending for ever
        delivery = Failed("internal", type(exc).__name__)
    result = _record(delivery, attempt, now, backoff)
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE notifier_deliveries SET state = %s, detail = %s, next_attempt_at = %s, updated_at = %s"
            " WHERE key = %s",
            (result.outcome, result.detail[:500], result.next_attempt_at, now, key.digest()),
        )  # fmt: skip
    return result
