"""The Reports gRPC API: per-domain and monthly reports as streamed bytes.

Scoped like every classifier query: the per-domain report is built from the Classifier
API's own answers (GetMonitoringDetails, ListStatusIntervals) for the caller, so another
account's id is NOT_FOUND; the monthly report reads only the caller's rows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.json_format import MessageToDict

from certwatch.classifier.api import ClassifierApi
from certwatch.classifier.reports import (
    activity,
    month_csv,
    month_rows,
    monthly,
    monthly_pdf,
    render,
)
from certwatch.platform import auth, db
from certwatch.platform.errors import InvalidArgument
from certwatch.platform.eventlog import EventLog
from certwatch.rules.targets import unicode_hostname
from certwatch.v1 import classifier_pb2 as cpb
from certwatch.v1 import reports_pb2 as pb
from certwatch.v1 import reports_pb2_grpc

PDF, JSON, CSV = "application/pdf", "application/json", "text/csv; charset=utf-8"
_MAX_INTERVAL_PAGES = 200  # 100,000 intervals: far past any real domain's history


def _format(value: str, allowed: dict[str, str]) -> str:
    if value not in allowed:
        raise InvalidArgument([("format", f"must be one of {', '.join(allowed)}, got {value!r}")])
    return allowed[value]


def _when(stamp: Any, zone: ZoneInfo) -> str:
    return (
        stamp.ToDatetime(tzinfo=UTC).astimezone(zone).replace(microsecond=0).isoformat()
        if stamp.seconds
        else ""
    )


def _at(value: datetime, zone: ZoneInfo) -> str:
    return render.stamp(value.astimezone(zone))


class ReportsApi(reports_pb2_grpc.ReportsServicer):
    def __init__(
        self,
        event_log: EventLog,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pdf_chunk: int = monthly_pdf.CHUNK_ROWS,
    ) -> None:
        """`pdf_chunk`: the monthly PDF's rows laid out at a time (its memory)."""
        self._log = event_log
        self._clock = clock
        self._pdf_chunk = pdf_chunk
        self._classifier = ClassifierApi(event_log, clock=clock)

    async def DomainReport(
        self, request: pb.DomainReportRequest, context: Any
    ) -> AsyncIterator[pb.ReportChunk]:
        content_type = _format(request.format, {"pdf": PDF, "json": JSON})
        details = await self._classifier.GetMonitoringDetails(
            cpb.StatusRequest(domain_id=request.domain_id), context
        )
        intervals = await self._intervals(request.domain_id, context)
        now = self._clock()
        alerts, renewals, zone = await self._activity(details)
        if content_type == JSON:
            data = _domain_json(details, intervals, alerts, renewals, now, zone)
        else:
            data = await asyncio.to_thread(_domain_pdf, details, intervals, alerts, renewals, now, zone)
        name = f"certwatch-report-{details.domain_id}.{request.format}"
        async for chunk in _chunks(data, content_type, name):
            yield chunk

    async def _activity(
        self, details: cpb.MonitoringDetails
    ) -> tuple[list[activity.Alert], list[activity.Renewal], ZoneInfo]:
        """The domain's alerts and the renewals of certificates naming its host, all time (a
        domain's report is its whole history, as its status intervals are, newest last), and
        the account's time zone now, which the report's times are written in."""
        account, host = auth.current().account_id, details.details.host
        start, end = datetime(1970, 1, 1, tzinfo=UTC), self._clock()
        async with db.snapshot(self._log.pool) as conn:
            alerts = [a async for a in activity.alerts(conn, account, start, end, details.domain_id)]
            renewals = [
                r async for r in activity.renewals(conn, account, start, end) if activity.covers(r, host)
            ]
            zone = await month_rows.account_zone_at(conn, account, end)
        return alerts, renewals, ZoneInfo(zone or "UTC")

    async def _intervals(self, domain_id: str, context: Any) -> list[cpb.StatusInterval]:
        found: list[cpb.StatusInterval] = []
        token = ""
        for _ in range(_MAX_INTERVAL_PAGES):
            page = await self._classifier.ListStatusIntervals(
                cpb.StatusIntervalsRequest(domain_id=domain_id, page_size=500, page_token=token), context
            )
            found.extend(page.intervals)
            token = page.next_page_token
            if not token:
                break
        return found

    async def MonthlyReport(
        self, request: pb.MonthlyReportRequest, context: Any
    ) -> AsyncIterator[pb.ReportChunk]:
        content_type = _format(request.format, {"pdf": PDF, "csv": CSV})
        account = auth.current().account_id
        async with db.snapshot(self._log.pool) as conn:
            zone = request.time_zone or await month_rows.account_zone(conn, account, request.month)
            p = monthly.period(request.month, zone, self._clock())
            name = f"certwatch-monthly-{p.month}.{request.format}"
            if content_type == CSV:
                first = True
                rows = month_rows.domains(conn, account, p)
                renewals = activity.renewals(conn, account, p.start, p.until)
                alerts = activity.alerts(conn, account, p.start, p.until)
                async for data in month_csv.write(rows, renewals, alerts, p):
                    yield pb.ReportChunk(
                        data=data, content_type=CSV if first else "", filename=name if first else ""
                    )
                    first = False
                return
            sources = monthly_pdf.Sources(
                domains=lambda: month_rows.domains(conn, account, p),
                expiring=lambda: month_rows.domains(conn, account, p, expiring=True),
                renewals=lambda: activity.renewals(conn, account, p.start, p.until),
                alerts=lambda: activity.alerts(conn, account, p.start, p.until),
            )
            data = await monthly_pdf.document(str(account), p, sources, self._pdf_chunk)
        async for chunk in _chunks(data, content_type, name):
            yield chunk


async def _chunks(data: bytes, content_type: str, filename: str) -> AsyncIterator[pb.ReportChunk]:
    for n, part in enumerate(render.chunks(data) if data else [b""]):
        yield pb.ReportChunk(data=part, content_type=content_type if n == 0 else "",
                             filename=filename if n == 0 else "")  # fmt: skip


def _interval_dict(i: cpb.StatusInterval, zone: ZoneInfo) -> dict[str, Any]:
    return {"status": i.status, "primary_cause": i.primary_cause or None, "causes": list(i.causes),
            "started_at": _when(i.started_at, zone), "ended_at": _when(i.ended_at, zone) or None,
            "duration_seconds": round(i.duration_seconds, 3)}  # fmt: skip


def _alert_dict(a: activity.Alert, zone: ZoneInfo) -> dict[str, Any]:
    return {"at": _at(a.at, zone), "outcome": "sent" if a.sent else "failed", "event": a.event,
            "channel": a.channel, "contact_id": a.contact_id, "attempts": a.attempts, "detail": a.detail}  # fmt: skip


def _renewal_dict(r: activity.Renewal, zone: ZoneInfo) -> dict[str, Any]:
    return {"at": _at(r.at, zone), "outcome": "renewed" if r.renewed else "failed",
            "instance_id": r.instance_id, "names": list(r.names), "issuer": r.issuer, "detail": r.detail,
            "not_after": _at(r.not_after, zone) if r.not_after else None}  # fmt: skip


def _domain_json(
    details: cpb.MonitoringDetails, intervals: list[cpb.StatusInterval], alerts: list[activity.Alert],
    renewals: list[activity.Renewal], now: datetime, zone: ZoneInfo,
) -> bytes:  # fmt: skip
    report = {
        "report": "monitoring",
        "generated_at": _at(now, zone),
        "time_zone": zone.key,
        "monitoring_details": MessageToDict(details, preserving_proto_field_name=True),
        "status_intervals": [_interval_dict(i, zone) for i in intervals],
        "alerts_sent": [_alert_dict(a, zone) for a in alerts],
        "hosting_renewals": [_renewal_dict(r, zone) for r in renewals],
    }
    return json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True).encode() + b"\n"


def _domain_pdf(
    details: cpb.MonitoringDetails, intervals: list[cpb.StatusInterval], alerts: list[activity.Alert],
    renewals: list[activity.Renewal], now: datetime, zone: ZoneInfo,
) -> bytes:  # fmt: skip
    certs = [c for chain in details.chains for c in chain.certificates]
    certs += [c.certificate for c in details.certificates]
    times = {c.sha256: f"{_when(c.not_before, zone)} to {_when(c.not_after, zone)}" for c in certs}
    document = render.html(
        "domain.html", d=details, host=unicode_hostname(details.details.host), zone=zone.key,
        created=_at(now, zone), checked_at=_when(details.details.checked_at, zone),
        times=times, intervals=[_interval_dict(i, zone) for i in intervals],
        updates=[(_when(u.observed_at, zone), c) for u in details.domain_name_updates for c in u.changes],
        alerts=[_alert_dict(a, zone) for a in alerts], renewals=[_renewal_dict(r, zone) for r in renewals],
    )  # fmt: skip
    return render.pdf(document)


def registration(api: ReportsApi) -> tuple[Any, Any, str]:
    return (reports_pb2_grpc.add_ReportsServicer_to_server, api, "certwatch.v1.Reports")
