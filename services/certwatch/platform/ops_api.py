"""`Ops.GetServiceStatus`: one service's own account of what keeps verdicts flowing.

Each projection's lag is the number of committed events of its types past its checkpoint;
the outbox relay's, the events past its bookmark (the relay is one leader for the whole
system, judged by its bookmark's age, not by this process). Counting stops at `LAG_CAP`, so
a status call stays cheap on a log of any size. Any authenticated caller may ask: the
answer names components and errors, never a tenant's data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from certwatch.platform import health
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.outbox import OutboxRelay
from certwatch.platform.projection import ProjectionRunner
from certwatch.platform.timestamps import timestamp
from certwatch.v1 import ops_pb2 as pb
from certwatch.v1 import ops_pb2_grpc

LAG_CAP = 100_000

_LAG = (
    "SELECT count(*) FROM (SELECT 1 FROM events e WHERE (e.transaction_id, e.position) >"
    " (coalesce((SELECT transaction_id FROM {table} WHERE name = %s), '0'::xid8),"
    " coalesce((SELECT position FROM {table} WHERE name = %s), 0)) {types} LIMIT %s) behind"
)


async def count_lag(conn: Conn, table: str, name: str, types: Sequence[str] | None) -> int:
    """Committed events (of `types`; None: all) past the bookmark `name` in `table`, up to LAG_CAP."""
    sql = _LAG.format(table=table, types="AND e.event_type = ANY(%s)" if types is not None else "")
    params: list[Any] = [name, name]
    if types is not None:
        params.append(list(types))
    cur = await conn.execute(sql.encode(), [*params, LAG_CAP])
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def _component(
    name: str, kind: str, progress: health.Progress | None, lag: int, last: datetime | None, now: datetime,
    detail: str = "",
) -> pb.Component:  # fmt: skip
    error = progress.last_error if progress is not None and progress.failing else None
    return pb.Component(
        name=name, kind=kind, healthy=health.healthy(progress, lag, last, now), lag=lag,
        lag_capped=lag >= LAG_CAP, last_error=error or "",
        failing_since=timestamp(progress.failing_since if progress else None), last_progress_at=timestamp(last),
        detail=detail,
    )  # fmt: skip


class OpsApi(ops_pb2_grpc.OpsServicer):
    """Reads the parts of a running service through `parts()` (they exist only once it runs)."""

    def __init__(
        self,
        service: str,
        event_log: EventLog,
        parts: Callable[[], tuple[OutboxRelay | None, Sequence[ProjectionRunner], Sequence[Any]]],
        serving: Callable[[], bool],
    ) -> None:
        self._service = service
        self._log = event_log
        self._parts = parts
        self._serving = serving

    async def GetServiceStatus(self, request: pb.ServiceStatusRequest, context: Any) -> pb.ServiceStatus:
        relay, runners, workers = self._parts()
        now = datetime.now(UTC)
        components: list[pb.Component] = []
        async with self._log.pool.connection(timeout=2) as conn:
            head = await self._log.head(conn=conn)
            for runner in runners:
                p = runner.projection
                lag = await count_lag(conn, "checkpoints", p.name, p.event_types)
                components.append(_component(p.name, "projection", runner.progress, lag,
                                             runner.progress.last_progress_at, now))  # fmt: skip
            if relay is not None:
                lag = await count_lag(conn, "outbox_relay", relay.name, None)
                cur = await conn.execute("SELECT updated_at FROM outbox_relay WHERE name = %s", (relay.name,))
                row = await cur.fetchone()
                components.append(_component("outbox.relay", "relay", relay.progress, lag,
                                             row[0] if row else None, now))  # fmt: skip
            for worker in workers:
                progress = getattr(worker, "progress", None)
                if progress is None:
                    continue
                lag, detail = await worker.backlog(conn) if hasattr(worker, "backlog") else (0, "")
                components.append(_component(type(worker).__name__.lower(), "worker", progress, lag,
                                             progress.last_progress_at, now, detail))  # fmt: skip
        return pb.ServiceStatus(service=self._service, serving=self._serving(), log_head=head,
                                components=components, now=timestamp(now))  # fmt: skip


def registration(api: OpsApi) -> tuple[Any, Any, str]:
    return (ops_pb2_grpc.add_OpsServicer_to_server, api, "certwatch.v1.Ops")
