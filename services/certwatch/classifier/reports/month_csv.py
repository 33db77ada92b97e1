"""The monthly report as CSV, written while the rows stream in: a `domain` record per domain
followed by its `incident` records, a `renewal` record per renewal hosting did or failed, an
`alert` record per alert sent or failed, then a `day` record per day and status, then `overall`.
One header for every record kind; a column a record has no value for is empty."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from certwatch.classifier.reports import activity, monthly

COLUMNS = (
    "record", "domain_id", "host", "port", "status", "primary_cause", "causes", "start", "end",
    "duration_seconds", "secure_seconds", "monitored_seconds", "secure_ratio", "incidents",
    "certificate_not_after", "expires_within_days", "day", "domains", "outcome", "event", "channel",
    "contact_id", "attempts", "instance_id", "issuer", "detail", "renewals", "alerts_sent", "alerts_failed",
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


def _renewal(r: activity.Renewal, p: monthly.Period) -> dict[str, object]:
    return {"record": "renewal", "start": monthly.iso(r.at, p), "outcome": "renewed" if r.renewed else "failed",
            "instance_id": r.instance_id, "host": activity.names(r), "issuer": r.issuer, "detail": r.detail,
            "certificate_not_after": monthly.iso(r.not_after, p) if r.not_after else ""}  # fmt: skip


def _alert(a: activity.Alert, p: monthly.Period) -> dict[str, object]:
    return {"record": "alert", "start": monthly.iso(a.at, p), "outcome": "sent" if a.sent else "failed",
            "domain_id": a.domain_id, "host": a.host, "port": a.port or "", "event": a.event,
            "channel": a.channel, "contact_id": a.contact_id, "attempts": a.attempts, "detail": a.detail}  # fmt: skip


@dataclass
class _Counts:
    renewals: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0


def _totals(t: monthly.Totals, c: _Counts, p: monthly.Period) -> Iterable[dict[str, object]]:
    for day, counts in zip(p.days, t.per_day, strict=True):
        for status in t.statuses:
            yield {"record": "day", "day": day.isoformat(), "status": status, "domains": counts[status]}
    yield {"record": "overall", "start": monthly.iso(p.start, p), "end": monthly.iso(p.until, p),
           "domains": t.domains, "incidents": t.incidents, "secure_seconds": round(t.secure_seconds),
           "monitored_seconds": round(t.monitored_seconds), "secure_ratio": _ratio(t.secure_ratio),
           "expires_within_days": f"30:{t.expiring[30]} 60:{t.expiring[60]}", "renewals": c.renewals,
           "alerts_sent": c.alerts_sent, "alerts_failed": c.alerts_failed}  # fmt: skip


async def write(
    rows: AsyncIterator[monthly.DomainMonth],
    renewals: AsyncIterator[activity.Renewal],
    alerts: AsyncIterator[activity.Alert],
    p: monthly.Period,
) -> AsyncIterator[bytes]:
    """CSV bytes in chunks of about 64 KiB; holds one record at a time."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    totals, counts = monthly.Totals(len(p.days)), _Counts()

    def full() -> bytes | None:
        if out.tell() < _FLUSH:
            return None
        data = out.getvalue().encode()
        out.seek(0)
        out.truncate()
        return data

    async for d in rows:
        totals.add(d)
        writer.writerows(_domain(d, p))
        if data := full():
            yield data
    async for r in renewals:
        counts.renewals += 1
        writer.writerow(_renewal(r, p))
        if data := full():
            yield data
    async for a in alerts:
        if a.sent:
            counts.alerts_sent += 1
        else:
            counts.alerts_failed += 1
        writer.writerow(_alert(a, p))
        if data := full():
            yield data
    writer.writerows(_totals(totals, counts, p))
    yield out.getvalue().encode()
