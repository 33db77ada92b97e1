"""The Classifier gRPC API: status, status history and monitoring details of the caller's domains.

Every query is scoped by the caller's account: another account's domain id answers
NOT_FOUND, exactly like an id that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.struct_pb2 import Struct

from certwatch.classifier import details_report
from certwatch.contracts.status import DomainClassified
from certwatch.platform import auth, db
from certwatch.platform.errors import InvalidArgument, NotFound
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.timestamps import timestamp
from certwatch.rules.facts import CertFacts
from certwatch.v1 import classifier_pb2 as pb
from certwatch.v1 import classifier_pb2_grpc

MAX_HISTORY = 500
DEFAULT_INTERVALS = 100
_DETAILS_COLUMNS = (
    "domain_id::text, host, port, contact_ids, enabled, service_ends_on, status, classified,"
    " serving, chain_observed_at,"
    " (SELECT observed_at FROM probe_latest p WHERE p.domain_id = classifier_details.domain_id)"
)


def _status(row: Any) -> pb.DomainStatus:
    verdict = Struct()
    verdict.update(row[5])
    return pb.DomainStatus(domain_id=str(row[0]), status=row[1], primary_cause=row[2] or "",
                           causes=row[3], checked_at=timestamp(row[4]), verdict=verdict)  # fmt: skip


def _classified(stored: Mapping[str, Any] | None) -> DomainClassified | None:
    """The verdict event the details row keeps, as the contract reads it."""
    return None if stored is None else DomainClassified.from_data(stored)


def _domain_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument([("domain_id", "not a domain id (a UUID)")]) from None


async def _certificates(conn: Conn, row: details_report.DetailsRow) -> dict[str, CertFacts]:
    fingerprints = sorted({fp for chain in (row.serving or {}).values() for fp in chain})
    if not fingerprints:
        return {}
    cur = await conn.execute(
        "SELECT sha256, facts FROM classifier_certificates WHERE sha256 = ANY(%b)", (fingerprints,)
    )
    return {r[0]: CertFacts.from_dict(r[1]) for r in await cur.fetchall()}


class ClassifierApi(classifier_pb2_grpc.ClassifierServicer):
    def __init__(
        self, event_log: EventLog, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._log = event_log
        self._clock = clock

    async def GetStatus(self, request: pb.StatusRequest, context: Any) -> pb.DomainStatus:
        account = auth.current().account_id
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT domain_id, status, primary_cause, causes,"
                " greatest(checked_at, probe_latest.observed_at), verdict"
                " FROM classifier_status LEFT JOIN probe_latest USING (domain_id)"
                " WHERE domain_id = %s AND account_id = %s",
                (_domain_id(request.domain_id), account),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no status for domain {request.domain_id} in this account")
        return _status(row)

    async def ListStatusHistory(self, request: pb.StatusRequest, context: Any) -> pb.StatusHistory:
        account = auth.current().account_id
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT domain_id, status, primary_cause, causes, checked_at, verdict"
                " FROM classifier_status_history WHERE domain_id = %s AND account_id = %s"
                f" ORDER BY transaction_id DESC, position DESC LIMIT {MAX_HISTORY}",
                (_domain_id(request.domain_id), account),
            )
            rows = await cur.fetchall()
            if not rows:  # no history yet, or no such domain: only the first is an answer
                cur = await conn.execute(
                    "SELECT 1 FROM classifier_details WHERE domain_id = %s AND account_id = %s",
                    (_domain_id(request.domain_id), account),
                )
                if await cur.fetchone() is None:
                    raise NotFound(f"no domain {request.domain_id} in this account")
        return pb.StatusHistory(entries=[_status(r) for r in rows])

    async def ListStatusIntervals(
        self, request: pb.StatusIntervalsRequest, context: Any
    ) -> pb.StatusIntervals:
        account = auth.current().account_id
        domain_id = _domain_id(request.domain_id)
        limit, before = _page(request)
        async with db.snapshot(self._log.pool) as conn:
            cur = await conn.execute(
                "SELECT seq, status, primary_cause, causes, started_at, ended_at FROM classifier_status_intervals"
                " WHERE domain_id = %s AND account_id = %s AND seq < %s ORDER BY seq DESC LIMIT %s",
                (domain_id, account, before, limit + 1),
            )
            rows = await cur.fetchall()
            if not rows:  # no verdict yet, or no such domain in this account
                cur = await conn.execute(
                    "SELECT 1 FROM classifier_details WHERE domain_id = %s AND account_id = %s",
                    (domain_id, account),
                )
                if await cur.fetchone() is None:
                    raise NotFound(f"no domain {request.domain_id} in this account")
        now = self._clock()
        page = [_interval(row, now) for row in rows[:limit]]
        more = len(rows) > limit
        return pb.StatusIntervals(intervals=page, next_page_token=str(rows[limit - 1][0]) if more else "")

    async def GetMonitoringDetails(self, request: pb.StatusRequest, context: Any) -> pb.MonitoringDetails:
        account = auth.current().account_id
        domain_id = _domain_id(request.domain_id)
        async with db.snapshot(self._log.pool) as conn:
            cur = await conn.execute(
                f"SELECT {_DETAILS_COLUMNS} FROM classifier_details WHERE domain_id = %s AND account_id = %s",
                (domain_id, account),
            )
            found = await cur.fetchone()
            if found is None:
                raise NotFound(f"no domain {request.domain_id} in this account")
            f = found
            row = details_report.DetailsRow(
                f[0], f[1], f[2], f[3], f[4], f[5], f[6], _classified(f[7]), f[8], f[9], f[10]
            )
            certificates = await _certificates(conn, row)
            cur = await conn.execute(
                "SELECT observed_at, kinds, changes FROM classifier_ownership_changes"
                " WHERE domain_id = %s AND account_id = %s"
                f" ORDER BY transaction_id DESC, position DESC LIMIT {MAX_HISTORY}",
                (domain_id, account),
            )
            ownership = await cur.fetchall()
        return details_report.build(row, certificates, ownership, self._clock())


def _page(request: pb.StatusIntervalsRequest) -> tuple[int, int]:
    """(page size, the seq every interval of the page is below)."""
    if not 0 <= request.page_size <= MAX_HISTORY:
        raise InvalidArgument(
            [("page_size", f"must be between 0 (default {DEFAULT_INTERVALS}) and {MAX_HISTORY}")]
        )
    if not request.page_token:
        return request.page_size or DEFAULT_INTERVALS, 2**31 - 1
    if not request.page_token.isdigit() or not 0 < int(request.page_token) < 2**31:
        raise InvalidArgument([("page_token", "not a token returned as next_page_token")])
    return request.page_size or DEFAULT_INTERVALS, int(request.page_token)


def _interval(row: Any, now: datetime) -> pb.StatusInterval:
    _, status, primary_cause, causes, started_at, ended_at = row
    out = pb.StatusInterval(status=status, primary_cause=primary_cause or "", causes=causes, open=ended_at is None,
                            duration_seconds=max(0.0, ((ended_at or now) - started_at).total_seconds()))  # fmt: skip
    out.started_at.FromDatetime(started_at)
    if ended_at is not None:
        out.ended_at.FromDatetime(ended_at)
    return out


def registration(api: ClassifierApi) -> tuple[Any, Any, str]:
    return (classifier_pb2_grpc.add_ClassifierServicer_to_server, api, "certwatch.v1.Classifier")
