"""Reports against PostgreSQL: the monthly report's figures (incidents, time SECURE, status
per day, certificates expiring after the month), the same bytes for a past month however
much happens later, account scoping, and the per-domain report with every section.

PDFs are read back with poppler (`pdftotext`, `pdfinfo`, one page through `pdftoppm`)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certwatch.classifier.details import DETAILS_VIEW
from certwatch.classifier.reports.api import ReportsApi
from certwatch.classifier.reports.monthly_pdf import CHUNK_ROWS
from certwatch.classifier.status_intervals import STATUS_INTERVALS
from certwatch.contracts import accounts, hosting
from certwatch.contracts import domain as dc
from certwatch.contracts import notifications as nc
from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up
from certwatch.v1 import reports_pb2 as pb
from tests.integration.test_classifier_details import Domain
from tests.support.probe_results import NOW, cert, intermediate, refused, result, served

CJK_HOST = "例子.测试"
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
JULY = datetime(2026, 7, 2, tzinfo=UTC)
SITE = re.compile(r"site\d{3}\.example\.test:443")


class Site(Domain):
    """A domain with a host of its own, in a given account."""

    def __init__(self, event_log: EventLog, account_id: str, host: str) -> None:
        super().__init__(event_log)
        self.account_id, self.host = account_id, host

    async def add_and_enable(self) -> None:
        base = {"domain_id": self.domain_id, "account_id": self.account_id, "host": self.host, "port": 443}
        await self.log.append(dc.stream_id(self.domain_id), [
            NewEvent(dc.DOMAIN_ADDED, {**base, "contact_ids": [], "added_at": NOW.isoformat()}),
            NewEvent(dc.MONITORING_ENABLED, {**base, "period_start": "2026-06-01",
                                            "service_ends_on": "2027-05-31", "generation": 1,
                                            "enabled_at": NOW.isoformat()}),
        ], expected_version=0)  # fmt: skip

    async def probe(self, endpoint: object, at: datetime) -> None:
        await self.probed(result(endpoint, at=at))  # type: ignore[arg-type]


async def alert(log: EventLog, site: Site, at: datetime, *, sent: bool = True) -> None:
    """What the notifier appends for one delivery (contracts/notifications.py)."""
    kind = nc.NotificationSent if sent else nc.NotificationFailed
    outcome = kind(key=uuid.uuid4().hex, event="network_failure", domain_id=site.domain_id,
                   account_id=site.account_id, contact_id="c0ffee00-0000-4000-8000-000000000001",
                   channel="email", incident="1", attempts=1 if sent else 5, at=at,
                   detail="" if sent else "550 mailbox unavailable")  # fmt: skip
    await log.append(nc.stream_id(outcome.key), [outcome.new_event()], expected_version=0)


async def renewal(log: EventLog, account_id: str, host: str, at: datetime, *, renewed: bool = True) -> None:
    """What hosting appends for a renewal done or failed (contracts/hosting.py)."""
    instance = str(uuid.uuid4())
    base = {"instance_id": instance, "account_id": account_id}
    applied = hosting.ApplicationSubmitted(**base, at=at - 30 * 24 * HOUR, automatic=False, application=hosting.Application(
        names=[host], key_type=hosting.KeyType.EC256, company="Example", contact_email="ops@example.test",
        validation=hosting.Validation.HTTP_01))  # fmt: skip
    done: hosting.InstanceEvent
    if renewed:
        certificate = hosting.Certificate(serial="0a", not_before=at, not_after=at + 90 * 24 * HOUR, names=[host],
                                          issuer="Example ACME CA", cert_pem="", chain_pem="")  # fmt: skip
        done = hosting.CertificateRenewed(**base, at=at, certificate_id=str(uuid.uuid4()), certificate=certificate,
                                          sealed_key="", order_url="https://ca.test/o/1",
                                          renew_at=at + 60 * 24 * HOUR, renew_source="lifetime")  # fmt: skip
    else:
        done = hosting.OrderFailed(**base, at=at, attempt_id="a1", order_url=None, kind=hosting.FailureKind.CA_ERROR,
                                   detail="rejectedIdentifier", failures=1, retry_at=at + HOUR, renewal=True,
                                   order_abandoned=True)  # fmt: skip
    await log.append(hosting.stream_id(instance), [applied.new_event(), done.new_event()], expected_version=0)


async def _bytes(chunks: AsyncIterator[pb.ReportChunk]) -> tuple[bytes, str, str]:
    found = [c async for c in chunks]
    return b"".join(c.data for c in found), found[0].content_type, found[0].filename


async def _as(account_id: str, call: Callable[[], AsyncIterator[pb.ReportChunk]]) -> tuple[bytes, str, str]:
    token = auth.bind(auth.Principal(uuid.UUID(account_id), "k", "user"))
    try:
        return await _bytes(call())
    finally:
        auth.unbind(token)


async def _monthly(
    log: EventLog, account_id: str, fmt: str, *, now: datetime = JULY, tz: str = "", chunk: int = CHUNK_ROWS
) -> tuple[bytes, str, str]:
    api = ReportsApi(log, clock=lambda: now, pdf_chunk=chunk)
    return await _as(account_id, lambda: api.MonthlyReport(pb.MonthlyReportRequest(month="2026-06", format=fmt,
                                                                              time_zone=tz), None))  # fmt: skip


def _pdf_text(data: bytes, tmp_path: Path, *, layout: bool = True) -> str:
    path = tmp_path / f"r{uuid.uuid4().hex}.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", *(["-layout"] if layout else []), str(path), "-"], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


def _pdf_info(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "info.pdf"
    path.write_bytes(data)
    return subprocess.run(
        ["pdfinfo", "-isodates", str(path)], check=True, capture_output=True, text=True
    ).stdout


def _first_page_png(data: bytes, tmp_path: Path) -> bytes:
    path = tmp_path / "page.pdf"
    path.write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
                   check=True)  # fmt: skip
    [png] = tmp_path.glob("page*.png")
    return png.read_bytes()


@pytest.fixture
async def account(event_log: EventLog) -> tuple[str, Site, Site, Site]:
    """June 2026: one site that fails for 3 hours, a CJK one expiring 15 days after the
    month, one expiring 45 days after; and another account's site."""
    account_id = str(uuid.uuid4())
    flaky = Site(event_log, account_id, "www.example.test")
    cjk = Site(event_log, account_id, "xn--fsqu00a.xn--0zwm56d")
    later = Site(event_log, account_id, "later.example.test")
    other = Site(event_log, str(uuid.uuid4()), "other.example.test")
    for site in (flaky, cjk, later, other):
        await site.add_and_enable()
    leaf, soon, sixty = cert(), cert(CJK_HOST, days=45), cert("later.example.test", days=75)
    await flaky.probe(served("192.0.2.1", leaf, intermediate()), NOW)
    await flaky.probe(refused("192.0.2.1"), NOW + 48 * HOUR)
    await flaky.probe(served("192.0.2.1", leaf, intermediate()), NOW + 51 * HOUR)
    await cjk.probe(served("192.0.2.2", soon, intermediate()), NOW)
    await later.probe(served("192.0.2.3", sixty, intermediate()), NOW + 24 * HOUR)
    await other.probe(refused("192.0.2.9"), NOW)
    await alert(event_log, flaky, NOW + 48 * HOUR + 120 * SECOND)
    await alert(event_log, cjk, NOW + 50 * HOUR, sent=False)
    await alert(event_log, other, NOW + HOUR)
    await renewal(event_log, account_id, "www.example.test", NOW + 100 * HOUR)
    await renewal(event_log, account_id, "later.example.test", NOW + 101 * HOUR, renewed=False)
    await renewal(event_log, other.account_id, "other.example.test", NOW + 100 * HOUR)
    await catch_up(event_log, STATUS_INTERVALS)
    return account_id, flaky, cjk, other


async def test_the_monthly_csv_adds_up(event_log: EventLog, account: tuple[str, Site, Site, Site]) -> None:
    account_id, _, _, other = account
    data, content_type, filename = await _monthly(event_log, account_id, "csv")
    assert content_type.startswith("text/csv") and filename == "certwatch-monthly-2026-06.csv"
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    domains = {r["host"]: r for r in rows if r["record"] == "domain"}
    assert set(domains) == {"www.example.test", CJK_HOST, "later.example.test"}  # not the other account's
    month_left = (datetime(2026, 7, 1, tzinfo=UTC) - NOW).total_seconds()
    assert int(domains["www.example.test"]["monitored_seconds"]) == month_left
    assert int(domains["www.example.test"]["secure_seconds"]) == month_left - 3 * 3600
    [incident] = [r for r in rows if r["record"] == "incident"]
    assert (incident["host"], incident["status"], incident["causes"]) == (
        "www.example.test", "ABNORMAL", "NETWORK_CONNECTION_FAILURE",
    )  # fmt: skip
    assert incident["start"] == "2026-06-03T12:00:00+00:00" and incident["end"] == "2026-06-03T15:00:00+00:00"
    assert incident["duration_seconds"] == "10800"
    assert domains[CJK_HOST]["expires_within_days"] == "30"
    assert domains["later.example.test"]["expires_within_days"] == "60"
    assert domains["www.example.test"]["expires_within_days"] == ""  # 90 days: after both windows
    days = {(r["day"], r["status"]): int(r["domains"]) for r in rows if r["record"] == "day"}
    assert days[("2026-06-01", "SECURE")] == 2 and days[("2026-06-02", "SECURE")] == 3
    assert days[("2026-06-03", "SECURE")] == 3  # 3 hours ABNORMAL is not most of the day
    [overall] = [r for r in rows if r["record"] == "overall"]
    assert overall["domains"] == "3" and overall["incidents"] == "1"
    assert overall["expires_within_days"] == "30:1 60:2"
    assert other.domain_id not in data.decode() and "other.example.test" not in data.decode()
    alerts = [(r["host"], r["outcome"], r["channel"], r["start"]) for r in rows if r["record"] == "alert"]
    assert alerts == [("www.example.test", "sent", "email", "2026-06-03T12:02:00+00:00"),
                      (CJK_HOST, "failed", "email", "2026-06-03T14:00:00+00:00")]  # fmt: skip
    renewals = [
        (r["host"], r["outcome"], r["certificate_not_after"][:10]) for r in rows if r["record"] == "renewal"
    ]
    assert renewals == [("www.example.test", "renewed", "2026-09-03"), ("later.example.test", "failed", "")]
    assert (overall["alerts_sent"], overall["alerts_failed"], overall["renewals"]) == ("1", "1", "2")

    # The same month in Shanghai (UTC+8) starts and ends eight hours earlier.
    shanghai, _, _ = await _monthly(event_log, account_id, "csv", tz="Asia/Shanghai")
    [local] = [r for r in csv.DictReader(io.StringIO(shanghai.decode())) if r["record"] == "incident"]
    assert local["start"] == "2026-06-03T20:00:00+08:00"


async def test_a_past_month_is_the_same_bytes_whatever_happens_later(
    event_log: EventLog, account: tuple[str, Site, Site, Site], tmp_path: Path
) -> None:
    account_id, flaky, cjk, _ = account
    csv_before, _, _ = await _monthly(event_log, account_id, "csv")
    pdf_before, content_type, _ = await _monthly(event_log, account_id, "pdf")
    assert content_type == "application/pdf" and pdf_before.startswith(b"%PDF-")
    # July: an outage, a renewal, and a new domain; the report is asked for later too.
    july = datetime(2026, 7, 1, 0, 30, tzinfo=UTC)
    await flaky.probe(refused("192.0.2.1"), july)
    await cjk.probe(served("192.0.2.2", cert(CJK_HOST, serial=2, days=120), intermediate()), july)
    newcomer = Site(event_log, account_id, "new.example.test")
    await newcomer.add_and_enable()
    await newcomer.probe(served("192.0.2.4", cert("new.example.test"), intermediate()), july)
    await catch_up(event_log, STATUS_INTERVALS)
    await catch_up(event_log, DETAILS_VIEW)
    await alert(event_log, flaky, july)
    await renewal(event_log, account_id, "www.example.test", july)
    zone = accounts.AccountTimeZoneSet(account_id=account_id, time_zone="Asia/Tokyo", at=july)
    await event_log.append(accounts.stream_id(account_id), [zone.new_event()], expected_version=None)
    later = JULY + timedelta(days=20)
    csv_after, _, _ = await _monthly(event_log, account_id, "csv", now=later)
    pdf_after, _, _ = await _monthly(event_log, account_id, "pdf", now=later)
    assert csv_after == csv_before
    assert pdf_after == pdf_before

    text = _pdf_text(pdf_before, tmp_path)
    for expected in ("Monthly report 2026-06", "Status counts per day", "Expiry timeline", CJK_HOST,
                     "www.example.test:443", "NETWORK_CONNECTION_FAILURE", "03:00:00", "Renewals by hosting",
                     "Alerts Sent", "Example ACME CA", "rejectedIdentifier", "network_failure", "1 sent, 1 failed"):  # fmt: skip
        assert expected in text, expected
    assert "new.example.test" not in text
    info = _pdf_info(pdf_before, tmp_path)
    dates = dict(line.split(":", 1) for line in info.splitlines() if "Date" in line)
    assert {k: v.strip() for k, v in dates.items()} == {  # the month's end, not the clock
        "CreationDate": "2026-07-01T00:00:00Z", "ModDate": "2026-07-01T00:00:00Z",
    }  # fmt: skip
    png = _first_page_png(pdf_before, tmp_path)
    assert png.startswith(b"\x89PNG") and len(png) > 5000


async def test_a_pdf_of_many_chunks_lists_every_row_and_is_the_same_bytes_twice(
    event_log: EventLog, tmp_path: Path
) -> None:
    """100 domains, each with an incident, half expiring within 60 days of the month, laid out
    30 rows at a time (over ten chunks): every row is listed once in its table, in order, and
    the pages are numbered 1 to N across the chunks."""
    account_id = str(uuid.uuid4())
    sites = [Site(event_log, account_id, f"site{n:03d}.example.test") for n in range(100)]
    for n, site in enumerate(sites):
        await site.add_and_enable()
        leaf = cert(site.host, days=30 + n)  # expires 0-99 days after June
        await site.probe(served("192.0.2.1", leaf, intermediate()), NOW)
        await site.probe(refused("192.0.2.1"), NOW + (n + 1) * HOUR)
        await site.probe(served("192.0.2.1", leaf, intermediate()), NOW + (n + 2) * HOUR)
    await catch_up(event_log, STATUS_INTERVALS)
    pdf, _, _ = await _monthly(event_log, account_id, "pdf", chunk=30)
    assert (await _monthly(event_log, account_id, "pdf", chunk=30))[0] == pdf

    pages = _pdf_text(pdf, tmp_path).split("\f")[:-1]
    text = "\n".join(pages)
    hosts = [f"{s.host}:443" for s in sites]
    expiring, domains, incidents = (
        [found[0] for line in text.splitlines() if marker in line and (found := SITE.findall(line))]
        for marker in ("Example CA", "%", "NETWORK_CONNECTION_FAILURE")
    )
    assert domains == hosts and incidents == hosts  # by host, every one
    assert expiring == hosts[:60]  # soonest first: those expiring within 60 days
    assert len(pages) > 3 and [f"page {n} of {len(pages)}" in page for n, page in enumerate(pages, 1)] == [
        True
    ] * len(pages)
    for title in ("Monthly report 2026-06", "Summary", "Domains monitored", "100", "Expiry timeline",
                  "Domains", "Incidents", "Renewals by hosting", "Alerts Sent"):  # fmt: skip
        assert title in text, title


async def test_the_running_month_lists_a_certificate_expiring_before_its_end(
    event_log: EventLog, tmp_path: Path
) -> None:
    """While the month runs, expiry counts from now: a leaf expiring later this month is in
    the summary's count, so it is in the expiring certificates' table too (the table once
    started at the month's end and said that none expires)."""
    account_id = str(uuid.uuid4())
    site = Site(event_log, account_id, "soon.example.test")
    await site.add_and_enable()
    await site.probe(served("192.0.2.1", cert(site.host, days=10), intermediate()), NOW)
    await catch_up(event_log, STATUS_INTERVALS)
    pdf, _, _ = await _monthly(event_log, account_id, "pdf", now=NOW + 72 * HOUR)
    text = _pdf_text(pdf, tmp_path)
    assert "1 within 30 days" in text
    assert "No certificate expires" not in text
    [row] = [line for line in text.splitlines() if "soon.example.test:443" in line and "Example CA" in line]
    assert row.split()[0] == "7"  # days after June 4, 12:00


async def test_the_account_time_zone_counts_the_days_unless_the_request_names_one(
    event_log: EventLog, account: tuple[str, Site, Site, Site]
) -> None:
    account_id = account[0]

    async def set_zone(name: str, at: datetime) -> None:
        zone = accounts.AccountTimeZoneSet(account_id=account_id, time_zone=name, at=at)
        await event_log.append(accounts.stream_id(account_id), [zone.new_event()], expected_version=None)

    def incident_start(data: bytes) -> str:
        [found] = [r for r in csv.DictReader(io.StringIO(data.decode())) if r["record"] == "incident"]
        return found["start"]

    await set_zone("Asia/Shanghai", datetime(2026, 5, 20, tzinfo=UTC))
    as_set, _, _ = await _monthly(event_log, account_id, "csv")
    assert incident_start(as_set) == "2026-06-03T20:00:00+08:00"  # the account's zone
    await set_zone("America/New_York", datetime(2026, 6, 10, tzinfo=UTC))  # June had begun: from July on
    assert (await _monthly(event_log, account_id, "csv"))[0] == as_set
    utc, _, _ = await _monthly(event_log, account_id, "csv", tz="UTC")  # the request's zone wins
    assert incident_start(utc) == "2026-06-03T12:00:00+00:00"
    # A domain's report is written in the account's zone as it is now.
    api = ReportsApi(event_log, clock=lambda: JULY)
    ask = pb.DomainReportRequest(domain_id=account[1].domain_id, format="json")
    report = json.loads((await _as(account_id, lambda: api.DomainReport(ask, None)))[0])
    assert report["time_zone"] == "America/New_York"
    assert report["status_intervals"][1]["started_at"] == "2026-06-03T08:00:00-04:00"


async def test_the_running_month_and_bad_requests(
    event_log: EventLog, account: tuple[str, Site, Site, Site]
) -> None:
    account_id = account[0]
    api = ReportsApi(event_log, clock=lambda: JULY)
    running, _, _ = await _monthly(event_log, account_id, "csv", now=NOW + 72 * HOUR)
    [overall] = [r for r in csv.DictReader(io.StringIO(running.decode())) if r["record"] == "overall"]
    assert overall["end"] == "2026-06-04T12:00:00+00:00"  # so far
    for month, fmt, tz, field in (("2026-13", "csv", "", "month"), ("June", "csv", "", "month"),
                                  ("2026-08", "csv", "", "month"), ("2026-06", "docx", "", "format"),
                                  ("2026-06", "csv", "Mars/Olympus", "time_zone")):  # fmt: skip
        request = pb.MonthlyReportRequest(month=month, format=fmt, time_zone=tz)
        with pytest.raises(InvalidArgument) as info:
            await _as(account_id, lambda r=request: api.MonthlyReport(r, None))
        assert info.value.violations[0][0] == field


async def test_the_domain_report_has_every_section(
    event_log: EventLog, account: tuple[str, Site, Site, Site], tmp_path: Path
) -> None:
    account_id, flaky, cjk, other = account
    api = ReportsApi(event_log, clock=lambda: JULY)

    def ask(domain_id: str, fmt: str) -> Callable[[], AsyncIterator[pb.ReportChunk]]:
        return lambda: api.DomainReport(pb.DomainReportRequest(domain_id=domain_id, format=fmt), None)

    data, content_type, filename = await _as(account_id, ask(flaky.domain_id, "json"))
    assert content_type == "application/json" and filename == f"certwatch-report-{flaky.domain_id}.json"
    report = json.loads(data)
    details = report["monitoring_details"]
    assert details["details"]["status"] == "SECURE" and details["details"]["port"] == 443
    assert details["certificates"][0]["brand"] == "Example CA"
    assert [i["status"] for i in report["status_intervals"]] == ["SECURE", "ABNORMAL", "SECURE"]
    assert report["status_intervals"][1]["duration_seconds"] == 10800
    assert report["time_zone"] == "UTC" and report["status_intervals"][1]["started_at"].endswith("+00:00")
    [sent] = report["alerts_sent"]  # this domain's only
    assert (sent["outcome"], sent["event"], sent["channel"]) == ("sent", "network_failure", "email")
    [renewed] = report["hosting_renewals"]  # certificates naming www.example.test
    assert (renewed["outcome"], renewed["names"], renewed["issuer"]) == (
        "renewed",
        [flaky.host],
        "Example ACME CA",
    )

    pdf, content_type, _ = await _as(account_id, ask(cjk.domain_id, "pdf"))
    assert content_type == "application/pdf"
    text = _pdf_text(pdf, tmp_path)
    for title in ("Monitoring Details", "ATS Check", "IP Content", "Certificate Information",
                  "Certificate Chain Information", "Contact Information", "Domain Name Update",
                  "Status Intervals", "Alerts Sent", "Renewals by hosting", CJK_HOST, "Remaining service days",
                  "failed"):  # fmt: skip
        assert title in text, title
    # No cell is cut off at its column's edge: the cipher, the chain's names and each
    # certificate's validity to its last second (they were clipped, the end date lost).
    flat = "".join(_pdf_text(pdf, tmp_path, layout=False).split())
    chain = json.loads((await _as(account_id, ask(cjk.domain_id, "json")))[0])["monitoring_details"]["chains"]
    for c in chain[0]["certificates"]:
        until = datetime.fromisoformat(c["not_after"]).isoformat()
        for whole in (f"to{until}", "".join(c["subject"].split()), "".join(c["issuer"].split())):
            assert whole in flat, whole
    assert "TLS_AES_128_GCM_SHA256" in flat and "c0ffee00-0000-4000-8000-000000000001" in flat
    with pytest.raises(NotFound):
        await _as(account_id, ask(other.domain_id, "pdf"))
    with pytest.raises(InvalidArgument):
        await _as(account_id, ask(flaky.domain_id, "xml"))
