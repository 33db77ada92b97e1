"""Monthly reports: the PDF for 1,000 domains and the CSV for 100,000, from the classifier's
Reports API handler called in-process (the bytes a gRPC stream would carry, without gRPC).

Run alone: `.venv/bin/python -m bench.reports`.

The rows are written straight into the tables the classifier's projections keep
(`classifier_details` with the chain served since September, `classifier_status_intervals`,
`classifier_certificates`), and the matching `CertificateChainObserved` events are appended: three intervals per domain in October 2026 (SECURE, three hours ABNORMAL, SECURE),
so the report has one incident per domain, and a `NotificationSent` per domain in the month
(the alerts section). RSS high-water marks are sampled at every chunk (CSV) and during the
PDF's layout: a report that held every row (or every laid-out page) would grow with the
domain count, so the PDF of 10,000 domains (every row, ~650 pages; one round) is measured
beside the PDF of 1,000.
References, same run, same servers: for the CSV, a bare `COPY (SELECT …) TO STDOUT` of the
same intervals; for the PDF, the CSV of the same 1,000 domains (what the layout adds).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import Row, bounded, cli, fresh_servers, median, save
from certwatch.classifier.reports import render
from certwatch.classifier.reports.api import ReportsApi
from certwatch.contracts import notifications as nc
from certwatch.contracts import status as sc
from certwatch.platform import auth, db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.services import MIGRATIONS
from certwatch.v1 import reports_pb2 as pb

BENCH = "reports"
PDF_DOMAINS = 1_000
BIG_PDF_DOMAINS = 10_000  # every row listed, laid out a chunk at a time: layout memory as for 1,000
CSV_DOMAINS = 100_000
MONTH = "2026-10"
CLOCK = datetime(2026, 11, 15, tzinfo=UTC)
ROUNDS = 2
PDF_TARGET_S = 10.0
CERTS = 90  # leaves expiring on 90 different days after the month

_SEED = (
    """
INSERT INTO classifier_details (domain_id, account_id, host, port, enabled, generation, status, serving,
                                chain_observed_at)
SELECT md5(%(tag)s || n)::uuid, %(account)s, 'site' || n || '.bench.test', 443, true, 1, 'SECURE',
       jsonb_build_object('192.0.2.1', jsonb_build_array('bench-' || n %% 90)), timestamptz '2026-09-20'
FROM generate_series(1, %(n)s) n
""",
    """
INSERT INTO classifier_status_intervals (domain_id, seq, account_id, started_at, ended_at, status,
                                         primary_cause, causes)
SELECT md5(%(tag)s || n)::uuid, s.seq, %(account)s, s.started, s.ended, s.status, s.cause, s.causes
FROM generate_series(1, %(n)s) n,
LATERAL (VALUES
    (1, timestamptz '2026-09-20', timestamptz '2026-10-01' + (n %% 28) * interval '1 day', 'SECURE',
     NULL, '{}'::text[]),
    (2, timestamptz '2026-10-01' + (n %% 28) * interval '1 day',
     timestamptz '2026-10-01' + (n %% 28) * interval '1 day' + interval '3 hours', 'ABNORMAL',
     'NETWORK_CONNECTION_FAILURE', '{NETWORK_CONNECTION_FAILURE}'::text[]),
    (3, timestamptz '2026-10-01' + (n %% 28) * interval '1 day' + interval '3 hours', NULL, 'SECURE',
     NULL, '{}'::text[])
) AS s(seq, started, ended, status, cause, causes)
""",
)

_BARE = """
COPY (SELECT d.domain_id, d.host, d.port, s.seq, s.status, s.primary_cause, s.causes,
             greatest(s.started_at, %(start)s), least(coalesce(s.ended_at, %(end)s), %(end)s)
      FROM classifier_details d JOIN classifier_status_intervals s USING (domain_id)
      WHERE d.account_id = %(account)s AND s.started_at < %(end)s
        AND (s.ended_at IS NULL OR s.ended_at > %(start)s)
      ORDER BY d.host, d.port, d.domain_id, s.seq) TO STDOUT (FORMAT csv)
"""


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _seed(log: EventLog, account: uuid.UUID, tag: str, n: int, *, alerts: bool = False) -> None:
    async with log.pool.connection() as conn:
        for sha in range(CERTS):
            await conn.execute(
                "INSERT INTO classifier_certificates (sha256, facts) VALUES (%s,"
                " jsonb_build_object('not_after', (timestamptz '2026-11-01' + %s * interval '1 day')::text,"
                " 'issuer_org', 'Bench CA')) ON CONFLICT DO NOTHING",
                (f"bench-{sha}", sha),
            )
        for statement in _SEED:
            await conn.execute(statement, {"tag": tag, "account": account, "n": n})
        cur = await conn.execute("SELECT md5(%s || n)::uuid::text FROM generate_series(1, %s) n", (tag, n))
        ids = [r[0] for r in await cur.fetchall()]
    for start in range(0, len(ids), 1000):
        await log.append_batch([
            (sc.stream_id(d), [NewEvent(sc.CERTIFICATE_CHAIN_OBSERVED, {
                "domain_id": d, "account_id": str(account), "observed_at": "2026-09-20T00:00:00+00:00",
                "serving": {"192.0.2.1": [f"bench-{i % CERTS}"]}, "certificates": []})], None)
            for i, d in enumerate(ids[start:start + 1000], start)
        ])  # fmt: skip
        if alerts:
            await log.append_batch([(nc.stream_id(f"{tag}-{d}"), [nc.NotificationSent(
                key=f"{tag}-{d}", event="network_failure", domain_id=d, account_id=str(account),
                contact_id=str(account), channel="email", incident="1", attempts=1,
                at=datetime(2026, 10, 1 + i % 28, 3, tzinfo=UTC)).new_event()], None)
                for i, d in enumerate(ids[start:start + 1000], start)])  # fmt: skip
    async with log.pool.connection() as conn:
        await conn.execute("ANALYZE")


async def _report(api: ReportsApi, account: uuid.UUID, fmt: str) -> tuple[float, int, float, float]:
    """(seconds, bytes, RSS growth high-water in MiB, this process's CPU seconds) of one
    monthly report: the CPU figure does not depend on what else the machine runs. RSS is
    sampled at every chunk and every 50 ms meanwhile (the PDF is laid out before its first)."""
    token = auth.bind(auth.Principal(account, "bench", "user"))
    base = _rss_mib()
    peak = [base]

    async def sample() -> None:
        for _ in range(36_000):  # 30 minutes: past the bench's own bound
            peak[0] = max(peak[0], _rss_mib())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        size = 0
        t0, cpu0 = time.perf_counter(), time.process_time()
        async for chunk in api.MonthlyReport(pb.MonthlyReportRequest(month=MONTH, format=fmt), None):
            size += len(chunk.data)
            peak[0] = max(peak[0], _rss_mib())
        return time.perf_counter() - t0, size, peak[0] - base, time.process_time() - cpu0
    finally:
        sampler.cancel()
        auth.unbind(token)


async def _bare(url: str, account: uuid.UUID) -> tuple[float, int]:
    import psycopg

    from certwatch.classifier.reports import monthly

    p = monthly.period(MONTH, "", CLOCK)
    async with await psycopg.AsyncConnection.connect(url) as conn:
        t0 = time.perf_counter()
        size = 0
        async with conn.cursor().copy(_BARE, {"start": p.start, "end": p.end, "account": account}) as copy:
            async for data in copy:
                size += len(data)
        return time.perf_counter() - t0, size


async def run() -> list[Row]:
    small, large, big = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with fresh_servers(BENCH) as (pg, _nats):
        pool = await db.open_pool(pg.url, max_size=4, migrate=MIGRATIONS)
        try:
            log = EventLog(pool)
            async with bounded(600, "seeding"):
                await _seed(log, small, "s", PDF_DOMAINS, alerts=True)
                await _seed(log, big, "b", BIG_PDF_DOMAINS, alerts=True)
                await _seed(log, large, "l", CSV_DOMAINS)
            api = ReportsApi(log, clock=lambda: CLOCK)
            got: dict[str, list[Any]] = {"pdf": [], "pdf_csv": [], "big_pdf": [], "csv": [], "bare": []}
            render.pdf("<p>warm-up</p>")  # WeasyPrint's import and fonts: not any report's memory
            async with bounded(900, "the reports"):
                for _ in range(ROUNDS):
                    got["pdf"].append(await _report(api, small, "pdf"))
                    got["pdf_csv"].append(await _report(api, small, "csv"))
                    if not got["big_pdf"]:  # ~650 pages: one round
                        got["big_pdf"].append(await _report(api, big, "pdf"))
                    got["csv"].append(await _report(api, large, "csv"))
                    got["bare"].append(await _bare(pg.url, large))
        finally:
            await pool.close()
    pdf, pdf_csv = median([g[0] for g in got["pdf"]]), median([g[0] for g in got["pdf_csv"]])
    csv, bare = median([g[0] for g in got["csv"]]), median([g[0] for g in got["bare"]])
    csv_rss = max(g[2] for g in got["csv"])
    pdf_rss, big_rss = max(g[2] for g in got["pdf"]), max(g[2] for g in got["big_pdf"])
    rows = [
        Row(BENCH, f"monthly PDF, {PDF_DOMAINS:,} domains", pdf, "s", f"monthly CSV, {PDF_DOMAINS:,} domains",
            pdf_csv, "max", PDF_TARGET_S, f"{got['pdf'][0][1]:,} bytes"),
        Row(BENCH, f"monthly CSV, {CSV_DOMAINS:,} domains", csv, "s", "bare COPY of the same intervals", bare,
            note=f"{got['csv'][0][1]:,} bytes; bare {got['bare'][0][1]:,} bytes"),
        Row(BENCH, f"(diag) monthly PDF, {PDF_DOMAINS:,} domains, CPU", median([g[3] for g in got["pdf"]]), "s",
            note="this process only (the query's share runs in PostgreSQL)"),
        Row(BENCH, f"(diag) monthly CSV, {CSV_DOMAINS:,} domains, CPU", median([g[3] for g in got["csv"]]), "s",
            note="this process only"),
        Row(BENCH, f"(diag) monthly CSV, {CSV_DOMAINS:,} domains, RSS growth", csv_rss, "MiB",
            note="high-water over the stream, sampled at every 64 KiB chunk"),
        Row(BENCH, f"(diag) monthly PDF, {BIG_PDF_DOMAINS:,} domains, CPU", median([g[3] for g in got["big_pdf"]]),
            "s", f"the PDF of {PDF_DOMAINS:,} domains", median([g[3] for g in got["pdf"]]),
            note=f"{got['big_pdf'][0][0]:.1f} s wall, {got['big_pdf'][0][1]:,} bytes; every row listed"),
        Row(BENCH, f"(diag) monthly PDF, {BIG_PDF_DOMAINS:,} domains, RSS growth", big_rss, "MiB",
            f"the PDF of {PDF_DOMAINS:,} domains", pdf_rss, note="high-water over the report, after a warm-up PDF"),
    ]  # fmt: skip
    context = {"rounds": {k: [list(x) for x in v] for k, v in got.items()}, "month": MONTH}
    save(BENCH, rows, context)
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
