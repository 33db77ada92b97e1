"""Status history as intervals: one row per stretch of time with one verdict.

Built from verdict events: consecutive equal verdicts (status, primary cause, causes)
collapse into one interval that starts at the first of them, so the rows are the same
whether every probe's verdict is in the log (today: DomainClassified for every probe) or
only the changes (the target of issue 10). An interval ends at the first check with
another verdict, or when monitoring stops (disabled, service ended); the current one is
open (no end). Removing a domain removes its history, as re-adding it starts afresh.

The fold is pure (`fold`); the projection loads the page's open intervals in one query
and writes every interval it touched with one upsert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from certwatch.contracts import domain as d
from certwatch.contracts import status as cev
from certwatch.contracts.listing import domain_of
from certwatch.contracts.payload import decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection

_ENDS_MONITORING = (d.MONITORING_DISABLED, d.SERVICE_ENDED)
EVENT_TYPES = (cev.DOMAIN_CLASSIFIED, *_ENDS_MONITORING, d.DOMAIN_REMOVED)


@dataclass(frozen=True, slots=True)
class Interval:
    domain_id: str
    seq: int  # 1, 2, ... per domain, in time order
    account_id: str
    status: str
    primary_cause: str | None
    causes: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None = None

    @property
    def verdict(self) -> tuple[str, str | None, tuple[str, ...]]:
        return (self.status, self.primary_cause, self.causes)


@dataclass
class Folded:
    removed: set[str]  # domains whose stored intervals go before `touched` is written
    touched: dict[tuple[str, int], Interval]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fold(last: Mapping[str, Interval], events: Iterable[RecordedEvent]) -> Folded:
    """Apply events in log order to each domain's latest interval (open or not)."""
    latest = dict(last)
    out = Folded(set(), {})

    def put(interval: Interval) -> None:
        latest[interval.domain_id] = interval
        out.touched[(interval.domain_id, interval.seq)] = interval

    for event in events:
        domain_id = event.data["domain_id"]
        current = latest.get(domain_id)
        if event.type == d.DOMAIN_REMOVED:
            latest.pop(domain_id, None)
            out.removed.add(domain_id)
            out.touched = {k: v for k, v in out.touched.items() if k[0] != domain_id}
        elif event.type in _ENDS_MONITORING:
            if current is not None and current.ended_at is None:
                put(replace(current, ended_at=event.recorded_at))
        else:
            verdict = event.data["verdict"]
            at = _parse(verdict["checked_at"])
            found = (verdict["status"], verdict.get("primary_cause"), tuple(verdict.get("causes", ())))
            if current is not None and current.ended_at is None and current.verdict == found:
                continue  # the same verdict again: the open interval goes on
            if current is not None and current.ended_at is None:
                put(replace(current, ended_at=at))
            put(Interval(domain_id, current.seq + 1 if current else 1, event.data["account_id"], *found, at))
    return out


async def _load(conn: Conn, domain_ids: Sequence[str]) -> dict[str, Interval]:
    cur = await conn.execute(
        "SELECT DISTINCT ON (domain_id) domain_id::text, seq, account_id::text, status, primary_cause,"
        " causes, started_at, ended_at FROM classifier_status_intervals"
        " WHERE domain_id = ANY(%b::uuid[]) ORDER BY domain_id, seq DESC",
        (list(domain_ids),),
    )
    return {
        r[0]: Interval(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), started_at=r[6], ended_at=r[7])
        for r in await cur.fetchall()
    }


async def _apply(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    ids = {domain_of(decode(e)) for e in events}  # a malformed event fails here, naming its field
    folded = fold(await _load(conn, list(ids)), events)
    if folded.removed:
        await conn.execute(
            "DELETE FROM classifier_status_intervals WHERE domain_id = ANY(%b::uuid[])",
            (list(folded.removed),),
        )
    rows = list(folded.touched.values())
    if rows:
        await conn.execute(
            "INSERT INTO classifier_status_intervals (domain_id, seq, account_id, status, primary_cause,"
            " causes, started_at, ended_at)"
            " SELECT u.domain_id, u.seq, u.account_id, u.status, u.primary_cause,"
            "  CASE WHEN u.causes = '' THEN '{}'::text[] ELSE string_to_array(u.causes, ',') END,"
            "  u.started_at, u.ended_at"
            " FROM unnest(%b::uuid[], %b::int[], %b::uuid[], %b::text[], %b::text[], %b::text[],"
            "  %b::timestamptz[], %b::timestamptz[])"
            "  AS u(domain_id, seq, account_id, status, primary_cause, causes, started_at, ended_at)"
            " ON CONFLICT (domain_id, seq) DO UPDATE SET ended_at = excluded.ended_at",
            (
                [r.domain_id for r in rows], [r.seq for r in rows], [r.account_id for r in rows],
                [r.status for r in rows], [r.primary_cause for r in rows], [",".join(r.causes) for r in rows],
                [r.started_at for r in rows], [r.ended_at for r in rows],
            ),
        )  # fmt: skip


STATUS_INTERVALS = Projection(
    name="classifier.status_intervals",
    event_types=list(EVENT_TYPES),
    handle_batch=_apply,
    reset_sql=["DELETE FROM classifier_status_intervals"],
)
