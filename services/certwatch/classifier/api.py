"""The Classifier gRPC API: current status and status history of the caller's domains."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.v1 import classifier_pb2 as pb
from certwatch.v1 import classifier_pb2_grpc

MAX_HISTORY = 500


def _status(row: Any) -> pb.DomainStatus:
    checked = Timestamp()
    checked.FromDatetime(row[4])
    verdict = Struct()
    verdict.update(row[5])
    return pb.DomainStatus(domain_id=str(row[0]), status=row[1], primary_cause=row[2] or "",
                           causes=row[3], checked_at=checked, verdict=verdict)  # fmt: skip


def _domain_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument([("domain_id", "not a domain id (a UUID)")]) from None


class ClassifierApi(classifier_pb2_grpc.ClassifierServicer):
    def __init__(self, event_log: EventLog) -> None:
        self._log = event_log

    async def GetStatus(self, request: pb.StatusRequest, context: Any) -> pb.DomainStatus:
        account = auth.current().account_id
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT domain_id, status, primary_cause, causes, checked_at, verdict"
                " FROM classifier_status WHERE domain_id = %s AND account_id = %s",
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
                f" ORDER BY position DESC LIMIT {MAX_HISTORY}",
                (_domain_id(request.domain_id), account),
            )
            rows = await cur.fetchall()
        return pb.StatusHistory(entries=[_status(r) for r in rows])


def registration(api: ClassifierApi) -> tuple[Any, Any, str]:
    return (classifier_pb2_grpc.add_ClassifierServicer_to_server, api, "certwatch.v1.Classifier")
