"""The hosting service's metrics, defined in one place (the chart's alert rules and dashboard read them).

- `certwatch.acme.orders` {outcome: issued | failed, renewal, kind (the `FailureKind` of a
  failure)} -> `certwatch_acme_orders_total`: each ACME order that ended, when recorded.
- `certwatch.certificates.expiring` {within_days: expired | 7 | 14 | 30, hosted} and
  `certwatch.certificate.earliest_expiry` (days) -> `certwatch_certificates_expiring`,
  `certwatch_certificate_earliest_expiry_days`: sampled from what every monitored endpoint
  serves (`hosting_observed_expiry`).
- `certwatch.certificate.days_to_expiry` {domain} (days) -> `certwatch_certificate_days_to_expiry_days`:
  the `CERTWATCH_EXPIRY_GAUGE_DOMAINS` (100) soonest-expiring endpoints only, one series each
  (`host`, or `host:port` off 443); a domain that leaves them is no longer exported.

Why buckets and not a gauge per domain: at 1,000,000 domains a per-domain series is a
million series in Prometheus (memory, and a scrape that takes minutes), while the alert only
asks "is anything expiring soon that nobody renews?" and the dashboard "how many, how soon".
Four buckets times hosted-or-not is eight series at any scale; which domains are in a bucket
is the console's and `certwatch report`'s question, from the database. The per-domain gauge
is bounded the same way: the N soonest are N series whatever the number of domains, read from
the front of an index on `valid_to` (N rows, not the table).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.contracts.hosting import InstanceState
from certwatch.platform import telemetry
from certwatch.platform.sampler import Sampler

BUCKETS = ("expired", "7", "14", "30")  # days left: (.., 0], (0, 7], (7, 14], (14, 30]
_HOSTING = (InstanceState.APPLYING.value, InstanceState.HOSTED.value)
# One pass over the endpoints expiring within 30 days (a few of them at any scale), each asked
# whether a current hosted certificate of its account names its host; and the soonest expiry.
_SAMPLE = """
SELECT CASE WHEN o.valid_to <= now() THEN 'expired' WHEN o.valid_to <= now() + interval '7 days' THEN '7'
            WHEN o.valid_to <= now() + interval '14 days' THEN '14' ELSE '30' END,
       EXISTS (SELECT 1 FROM hosting_instances i JOIN hosting_certificates c ON c.certificate_id = i.certificate_id
               WHERE i.account_id = o.account_id AND i.state = ANY(%s) AND o.host = ANY(c.names)),
       count(*)
  FROM hosting_observed_expiry o WHERE o.valid_to <= now() + interval '30 days' GROUP BY 1, 2
"""
_EARLIEST = "SELECT extract(epoch FROM min(valid_to) - now()) / 86400 FROM hosting_observed_expiry"
_SOONEST = (
    "SELECT host, port, valid_to FROM hosting_observed_expiry WHERE valid_to IS NOT NULL"
    " ORDER BY valid_to LIMIT %s"
)
_DAY_S = 86400.0


def record_order(outcome: str, *, renewal: bool, kind: str = "") -> None:
    attributes = {"outcome": outcome, "renewal": str(renewal).lower()}
    if kind:
        attributes["kind"] = kind
    telemetry.counter("certwatch.acme.orders", description="ACME orders that ended").add(1, attributes)


class ExpirySampler(Sampler):
    """A worker: every `every_s`, the endpoints by days to expiry and whether hosting renews them."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, every_s: float = 30.0, domains: int = 100) -> None:
        super().__init__(every_s=every_s)
        self._pool = pool
        self._domains = domains
        self._expiring = telemetry.gauge(
            "certwatch.certificates.expiring", unit="{endpoint}", description="endpoints by days to expiry"
        )
        self._earliest = telemetry.gauge(
            "certwatch.certificate.earliest_expiry", unit="d", description="days to the soonest expiry"
        )
        self._days_to_expiry = telemetry.observed_gauge(
            "certwatch.certificate.days_to_expiry",
            unit="d",
            description="days to expiry, soonest domains only",
        )

    async def sample(self) -> None:
        async with self._pool.connection(timeout=5) as conn:
            counts, earliest = await expiring(conn)
            soonest = await soonest_expiring(conn, self._domains) if self._domains else {}
        # days counted at each collection, from the expiry dates of the last sample
        self._days_to_expiry.publish(functools.partial(days_left, soonest))
        for bucket in BUCKETS:  # every series each time: a bucket that emptied reads 0, not its last value
            for hosted in (False, True):
                attributes = {"within_days": bucket, "hosted": str(hosted).lower()}
                self._expiring.set(counts.get((bucket, hosted), 0), attributes)
        if earliest is not None:
            self._earliest.set(earliest)


async def expiring(conn: Any) -> tuple[dict[tuple[str, bool], int], float | None]:
    """Endpoints expiring within 30 days by (bucket, hosted), and the days to the soonest expiry."""
    rows = await (await conn.execute(_SAMPLE, (list(_HOSTING),))).fetchall()
    earliest = await (await conn.execute(_EARLIEST)).fetchone()
    days = None if earliest is None or earliest[0] is None else float(earliest[0])
    return {(str(b), bool(h)): int(n) for b, h, n in rows}, days


async def soonest_expiring(conn: Any, limit: int) -> dict[str, datetime]:
    """The `limit` endpoints that expire first: domain -> expiry (the soonest of a name seen twice)."""
    rows = await (await conn.execute(_SOONEST, (limit,))).fetchall()
    soonest: dict[str, datetime] = {}
    for host, port, valid_to in rows:
        soonest.setdefault(host if port == 443 else f"{host}:{port}", valid_to)
    return soonest


def days_left(soonest: Mapping[str, datetime]) -> Iterator[tuple[float, dict[str, str]]]:
    """Each domain's days to expiry now, as gauge series."""
    now = datetime.now(UTC)
    return (((valid_to - now).total_seconds() / _DAY_S, {"domain": d}) for d, valid_to in soonest.items())
