"""What other services recorded about an account's domains, read from their contract events
(never their tables): alerts sent or failed (contracts/notifications.py) and certificate
renewals done or failed by hosting (contracts/hosting.py).

Each reader streams rows by a server-side cursor, ordered by the time the event records,
and filters by that time, so a past month reads the same whatever is appended later.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from certwatch.contracts import hosting
from certwatch.contracts import notifications as nc
from certwatch.rules.targets import unicode_hostname

_ITERSIZE = 500
DIGEST = "*"  # a digest's domain_id: it lists several domains
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Alert:
    at: datetime
    sent: bool
    event: str
    channel: str
    contact_id: str
    domain_id: str
    host: str  # "" for a digest or a domain the classifier no longer knows
    port: int
    attempts: int
    detail: str


@dataclass(frozen=True, slots=True)
class Renewal:
    at: datetime
    renewed: bool
    instance_id: str
    names: tuple[str, ...]
    not_after: datetime | None  # the new certificate's
    issuer: str
    detail: str  # why it failed: the failure kind and the CA's word


# The account's events of these types by their `at` text (classifier migration 008): a range of
# ISO-8601 dates (`Payload.to_data` writes UTC) a day wider than [start, end) each side, so any
# offset falls inside; the cast to timestamptz (not immutable, so not indexable) is exact.
_DAYS = """(e.data->>'at') COLLATE "C" >= %(first_day)s AND (e.data->>'at') COLLATE "C" < %(after_day)s"""

_ALERTS = f"""
SELECT (e.data->>'at')::timestamptz AS at, e.event_type = %(sent)s, e.data->>'event', e.data->>'channel',
       e.data->>'contact_id', e.data->>'domain_id', coalesce(d.host, ''), coalesce(d.port, 0),
       (e.data->>'attempts')::int, coalesce(e.data->>'detail', '')
FROM events e
LEFT JOIN classifier_details d
       ON d.domain_id = CASE WHEN e.data->>'domain_id' = %(digest)s THEN NULL ELSE (e.data->>'domain_id')::uuid END
WHERE e.event_type = ANY(%(types)s) AND e.data->>'account_id' = %(account)s AND {_DAYS}
  AND (e.data->>'at')::timestamptz >= %(start)s AND (e.data->>'at')::timestamptz < %(end)s
  AND (%(domain)s = '' OR e.data->>'domain_id' = %(domain)s)
ORDER BY at, e.position
"""

_RENEWALS = f"""
SELECT (e.data->>'at')::timestamptz AS at, e.event_type = %(renewed)s, e.data->>'instance_id',
       coalesce(e.data->'certificate'->'names', app.names, '[]'::jsonb),
       (e.data->'certificate'->>'not_after')::timestamptz, coalesce(e.data->'certificate'->>'issuer', ''),
       coalesce((e.data->>'kind') || ': ' || (e.data->>'detail'), '')
FROM events e
LEFT JOIN LATERAL (
    SELECT a.data->'application'->'names' AS names FROM events a
    WHERE a.stream_id = e.stream_id AND a.event_type = %(applied)s AND a.stream_version < e.stream_version
    ORDER BY a.stream_version DESC LIMIT 1
) app ON true
WHERE e.event_type = ANY(%(types)s) AND e.data->>'account_id' = %(account)s AND {_DAYS}
  AND (e.data->>'at')::timestamptz >= %(start)s AND (e.data->>'at')::timestamptz < %(end)s
ORDER BY at, e.position
"""


def _days(start: datetime, end: datetime) -> dict[str, str]:
    first, after = start.astimezone(UTC) - _DAY, end.astimezone(UTC) + _DAY
    return {"first_day": first.date().isoformat(), "after_day": after.date().isoformat()}


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any]) -> AsyncIterator[Any]:
    async with conn.cursor(name=f"activity_{uuid.uuid4().hex}") as cur:
        cur.itersize = _ITERSIZE
        await cur.execute(sql, params)
        async for row in cur:
            yield row


async def alerts(
    conn: psycopg.AsyncConnection[Any],
    account_id: uuid.UUID,
    start: datetime,
    end: datetime,
    domain_id: str = "",
) -> AsyncIterator[Alert]:
    """Every delivery outcome of the account (of one domain, when given) in [start, end)."""
    params = {"sent": nc.NOTIFICATION_SENT, "types": list(nc.NOTIFICATION_EVENTS), "account": str(account_id),
              "start": start, "end": end, "domain": domain_id, "digest": DIGEST, **_days(start, end)}  # fmt: skip
    async for at, sent, event, channel, contact, domain, host, port, attempts, detail in _rows(
        conn, _ALERTS, params
    ):
        yield Alert(at, sent, event, channel, contact, domain, unicode_hostname(host) if host else "", port,
                    attempts, detail)  # fmt: skip


async def renewals(
    conn: psycopg.AsyncConnection[Any], account_id: uuid.UUID, start: datetime, end: datetime
) -> AsyncIterator[Renewal]:
    """Every renewal hosting did or failed for the account in [start, end)."""
    params = {"renewed": hosting.RENEWAL_SUCCEEDED, "applied": hosting.ApplicationSubmitted.TYPE,
              "types": [hosting.RENEWAL_SUCCEEDED, hosting.RENEWAL_FAILED], "account": str(account_id),
              "start": start, "end": end, **_days(start, end)}  # fmt: skip
    async for at, renewed, instance, names, not_after, issuer, detail in _rows(conn, _RENEWALS, params):
        yield Renewal(at, renewed, instance, tuple(names), not_after, issuer, detail)


def covers(renewal: Renewal, host: str) -> bool:
    """Whether a renewal's certificate names `host` (directly or by a wildcard one label up)."""
    parent = host.partition(".")[2]
    return host in renewal.names or (bool(parent) and f"*.{parent}" in renewal.names)


def domain_name(host: str, port: int, domain_id: str) -> str:
    if domain_id == DIGEST:
        return "digest"
    return f"{host}:{port}" if host else domain_id


def names(renewal: Renewal) -> str:
    return ", ".join(renewal.names)
