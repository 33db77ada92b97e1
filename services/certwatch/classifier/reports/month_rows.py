"""The monthly report's rows, streamed from PostgreSQL one domain at a time.

One server-side cursor over the account's domains (ordered by host, so the output order is
fixed) with each domain's intervals that overlap the month, and its leaf certificate as of
the month's end: the chain the details row holds when it was observed before then, else the
last `CertificateChainObserved` before then; `classifier_certificates` keeps the facts. Nothing here depends on rows
written after the month, so a past month reads the same whenever it is asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import psycopg

from certwatch.classifier.reports import monthly
from certwatch.contracts import accounts
from certwatch.contracts import status as sc
from certwatch.rules.targets import unicode_hostname

_ITERSIZE = 500

_SQL = """
SELECT d.domain_id::text, d.host, d.port, i.statuses, i.primary_causes, i.causes, i.started, i.ended,
       cert.not_after, cert.brand
FROM classifier_details d
CROSS JOIN LATERAL (
    SELECT array_agg(s.status ORDER BY s.seq) AS statuses,
           array_agg(coalesce(s.primary_cause, '') ORDER BY s.seq) AS primary_causes,
           array_agg(array_to_string(s.causes, ',') ORDER BY s.seq) AS causes,
           array_agg(s.started_at ORDER BY s.seq) AS started,
           array_agg(s.ended_at ORDER BY s.seq) AS ended
    FROM classifier_status_intervals s
    WHERE s.domain_id = d.domain_id AND s.started_at < %(end)s
      AND (s.ended_at IS NULL OR s.ended_at > %(start)s)
) i
CROSS JOIN LATERAL (
    -- What it served at the month's end: today's chain when it was observed before then, else
    -- the last chain event before then (its stream, by the (stream_id, stream_version) index).
    SELECT CASE WHEN d.chain_observed_at < %(end)s THEN d.serving ELSE (
        SELECT e.data->'serving' FROM events e
        WHERE e.stream_id = %(stream_prefix)s || d.domain_id::text AND e.event_type = %(chain_event)s
          AND (e.data->>'observed_at')::timestamptz < %(end)s
        ORDER BY e.stream_version DESC LIMIT 1) END AS serving
) l
LEFT JOIN LATERAL (
    SELECT (c.facts->>'not_after')::timestamptz AS not_after, coalesce(c.facts->>'issuer_org', '') AS brand
    FROM jsonb_each(l.serving) AS served(ip, chain)
    JOIN classifier_certificates c ON c.sha256 = served.chain->>0
    ORDER BY 1, 2 LIMIT 1
) cert ON true
WHERE d.account_id = %(account)s AND i.statuses IS NOT NULL {where}
ORDER BY {order}
"""
_BY_HOST = _SQL.format(where="", order="d.host, d.port, d.domain_id")
# Leaves expiring within the last window after the month (monthly.expiring_within), soonest
# first; both bounds count from `until` as days_left does, so while the month runs a leaf that
# expires before the month's end is listed as the summary counts it.
_BY_EXPIRY = _SQL.format(
    where="AND cert.not_after >= %(until)s AND cert.not_after < %(expiring_until)s",
    order="cert.not_after, d.host, d.port, d.domain_id",
)


_ZONE = """
SELECT data->>'time_zone' FROM events
WHERE stream_id = %s AND event_type = %s AND (data->>'at')::timestamptz < %s
ORDER BY stream_version DESC LIMIT 1
"""


async def account_zone(conn: psycopg.AsyncConnection[Any], account_id: uuid.UUID, month: str) -> str:
    """The account's time zone as the month began (see contracts/accounts.py); "" when none
    was set (UTC) or `month` is not a month (the period refuses it)."""
    year, number = monthly.year_month(month)
    return await account_zone_at(conn, account_id, accounts.month_began(year, number)) if year else ""


async def account_zone_at(conn: psycopg.AsyncConnection[Any], account_id: uuid.UUID, at: datetime) -> str:
    """The account's time zone as set before `at`; "" when none was (UTC)."""
    cur = await conn.execute(_ZONE, (accounts.stream_id(account_id), accounts.AccountTimeZoneSet.TYPE, at))
    row = await cur.fetchone()
    return str(row[0]) if row and accounts.valid_zone(str(row[0])) else ""


async def domains(
    conn: psycopg.AsyncConnection[Any], account_id: uuid.UUID, p: monthly.Period, *, expiring: bool = False
) -> AsyncIterator[monthly.DomainMonth]:
    """Each domain monitored at some time in the month, summarised, by host; with `expiring`,
    only those whose leaf expires within 60 days of the month's end, soonest first. Call
    inside a snapshot."""
    params = {"chain_event": sc.CERTIFICATE_CHAIN_OBSERVED, "stream_prefix": sc.stream_id(""),
              "account": account_id, "start": p.start, "end": p.end, "until": p.until,
              "expiring_until": p.until + timedelta(days=monthly.EXPIRY_WINDOWS[-1])}  # fmt: skip
    async with conn.cursor(name=f"monthly_{uuid.uuid4().hex}") as cur:
        cur.itersize = _ITERSIZE
        await cur.execute(_BY_EXPIRY if expiring else _BY_HOST, params)
        async for row in cur:
            yield _summary(row, p)


def _summary(row: Any, p: monthly.Period) -> monthly.DomainMonth:
    domain_id, host, port, statuses, primaries, causes, started, ended, not_after, brand = row
    intervals = [
        monthly.Interval(status, primary or None, tuple(c.split(",")) if c else (), start, end)
        for status, primary, c, start, end in zip(statuses, primaries, causes, started, ended, strict=True)
    ]
    leaf = monthly.expiry(not_after, brand, p)
    return monthly.summarize(domain_id, unicode_hostname(host), port, intervals, leaf, p)
