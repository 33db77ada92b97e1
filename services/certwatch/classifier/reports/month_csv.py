"""The monthly report as CSV, written while the rows stream in: a `domain` record per domain
followed by its `incident` records, then a `day` record per day and status, then `overall`.
One header for every record kind; a column a record has no value for is empty."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable

from certwatch.classifier.reports import monthly

COLUMNS = (
    "record", "domain_id", "host", "port", "status", "primary_cause", "causes", "start", "end",
    "duration_seconds", "secure_seconds", "monitored_seconds", "secure_ratio", "incidents",
    "certificate_not_after", "expires_within_days", "day", "domains",
)  # fmt: skip
_FLUSH = 64 * 1024


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def _domain(d: monthly.DomainMonth, p: monthly.Period) -> Iterable[dict[str, object]]:
    window = monthly.expiring_within(d)
    yield {"record": "domain", "domain_id": d.domain_id, "host": d.host, "port": d.port,
           "status": d.final_status, "secure_seconds": round(d.secure_seconds),
           "monitored_seconds": round(d.monitored_seconds), "secure_ratio": _ratio(d.secure_ratio),
           "incidents": len(d.incidents),
           "certificate_not_after": monthly.iso(d.expiry.not_after, p) if d.expiry else "",
           "expires_within_days": window or ""}  # fmt: skip
    for s in d.incidents:
        yield {"record": "incident", "domain_id": d.domain_id, "host": d.host, "port": d.port,
               "status": s.status, "primary_cause": s.primary_cause or "", "causes": " ".join(s.causes),
               "start": monthly.iso(s.start, p), "end": "" if s.open else monthly.iso(s.end, p),
               "duration_seconds": round(s.seconds)}  # fmt: skip


def _totals(t: monthly.Totals, p: monthly.Period) -> Iterable[dict[str, object]]:
    for day, counts in zip(p.days, t.per_day, strict=True):
        for status in t.statuses:
            yield {"record": "day", "day": day.isoformat(), "status": status, "domains": counts[status]}
    yield {"record": "overall", "start": monthly.iso(p.start, p), "end": monthly.iso(p.until, p),
           "domains": t.domains, "incidents": t.incidents, "secure_seconds": round(t.secure_seconds),
           "monitored_seconds": round(t.monitored_seconds), "secure_ratio": _ratio(t.secure_ratio),
           "expires_within_days": f"30:{t.expiring[30]} 60:{t.expiring[60]}"}  # fmt: skip


async def write(rows: AsyncIterator[monthly.DomainMonth], p: monthly.Period) -> AsyncIterator[bytes]:
    """CSV bytes in chunks of about 64 KiB; holds one domain's records at a time."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    totals = monthly.Totals(len(p.days))
    async for d in rows:
        totals.add(d)
        writer.writerows(_domain(d, p))
        if out.tell() >= _FLUSH:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    writer.writerows(_totals(totals, p))
    yield out.getvalue().encode()
