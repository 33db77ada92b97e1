"""The probe schedule: a projection of lifecycle events, and the claim query probers share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.contracts.listing import domain_of
from certwatch.contracts.payload import Payload, decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.page_tables import PageTable, Row
from certwatch.platform.projection import Projection
from certwatch.rules.causes import Status

TABLE = PageTable("probe_schedule", "domain_id", {
    "domain_id": "uuid", "account_id": "uuid", "host": "text", "port": "int4", "generation": "int4",
    "traceparent": "text", "first_check": "bool", "paused": "bool", "next_due": "timestamptz",
    "claimed_by": "text", "last_probed": "timestamptz", "reported_chains": "text[]",
})  # fmt: skip


def step(row: Row | None, event: RecordedEvent, payload: Payload, now: datetime) -> Row | None:
    """One event applied to the domain's schedule row (None: not scheduled); `now` is
    the transaction's time."""
    match payload:
        case dc.MonitoringEnabled() as e:
            return {
                "domain_id": e.domain_id, "last_probed": None, **(row or {}),
                "account_id": row["account_id"] if row else e.account_id, "host": e.host, "port": e.port,
                "generation": e.generation, "traceparent": event.metadata.get("traceparent"),
                "first_check": True, "paused": False, "next_due": now, "claimed_by": None, "reported_chains": [],
            }  # fmt: skip
        case dc.DomainEdited() as e if row is not None:
            # A new port is checked at once; after an enable failure this is the seed's
            # "edit and retry".
            return {**row, "port": e.port, "next_due": now, "first_check": row["first_check"] or row["paused"],
                    "paused": False}  # fmt: skip
        case dc.RecheckRequested() as e if row is not None:
            # Due now. An enable check again comes with a new generation: a probe of the old one
            # still in flight is dropped. A row already due as an enable check, or paused after a
            # failed one (domains enabled before enable checks had events of their own), stays one.
            return {**row, "port": e.port, "generation": e.generation,
                    "first_check": row["first_check"] or row["paused"] or e.enable_check, "paused": False,
                    "next_due": now, "claimed_by": None}  # fmt: skip
        case dc.MonitoringDisabled() | dc.DomainRemoved() | dc.MonitoringServiceEnded():
            return None
        case sc.DomainClassified() as e if row is not None and row["generation"] == e.generation:
            failed = e.verdict.status is Status.ENABLE_FAILED
            return {**row, "first_check": failed, "paused": failed}
    return row


def fold(
    loaded: Mapping[str, Row], page: Sequence[tuple[RecordedEvent, Payload]], now: datetime
) -> dict[str, Row | None]:
    """Each touched domain's row after the page, in log order."""
    rows: dict[str, Row | None] = {}
    for event, payload in page:
        domain_id = domain_of(payload)
        current = rows[domain_id] if domain_id in rows else loaded.get(domain_id)
        rows[domain_id] = step(current, event, payload, now)
    return rows


async def _apply(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    # The probers change these rows too (claims, rounds): the page's rows are locked as they
    # are read, so what is written back is what they hold now.
    page = [(e, decode(e)) for e in events]  # a malformed event fails here, naming its field
    loaded = await TABLE.load(conn, {domain_of(p) for _, p in page}, lock=True)
    cur = await conn.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None
    await TABLE.write(conn, loaded, fold(loaded, page, row[0]))


SCHEDULE = Projection(
    name="prober.schedule",
    event_types=[dc.MONITORING_ENABLED, dc.DOMAIN_EDITED, dc.RECHECK_REQUESTED, dc.MONITORING_DISABLED,
                 dc.DOMAIN_REMOVED, dc.SERVICE_ENDED, sc.DOMAIN_CLASSIFIED],
    handle_batch=_apply,
    reset_sql=["DELETE FROM probe_schedule"],
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Due:
    domain_id: str
    account_id: str
    host: str
    port: int
    generation: int
    first_check: bool
    reported_chains: frozenset[str] = frozenset()


async def claim(conn: Conn, *, worker: str, limit: int, lease_s: float) -> list[Due]:
    """Claim up to `limit` due domains for `lease_s` seconds; other probers skip them."""
    cur = await conn.execute(
        "WITH due AS (SELECT domain_id FROM probe_schedule WHERE NOT paused AND next_due <= now()"
        " ORDER BY next_due LIMIT %s FOR UPDATE SKIP LOCKED)"
        " UPDATE probe_schedule s SET next_due = now() + make_interval(secs => %s), claimed_by = %s"
        " FROM due WHERE s.domain_id = due.domain_id"
        " RETURNING s.domain_id, s.account_id, s.host, s.port, s.generation, s.first_check,"
        " s.reported_chains",
        (limit, lease_s, worker),
    )
    return [Due(str(r[0]), str(r[1]), r[2], r[3], r[4], r[5], frozenset(r[6])) for r in await cur.fetchall()]


async def reschedule(
    conn: Conn, rounds: list[tuple[Due, datetime, frozenset[str]]], *, probed_at: datetime, worker: str
) -> set[str]:
    """Set each domain's next round where `worker` still holds the claim; return those ids.

    A row is not held when its lease ran out and another prober claimed it, or when the
    domain was re-enabled (new generation), disabled or removed meanwhile.
    """
    cur = await conn.execute(
        "UPDATE probe_schedule s SET next_due = r.next_due, last_probed = %s, claimed_by = NULL,"
        " traceparent = NULL, reported_chains = string_to_array(r.reported, ';')"
        " FROM unnest(%b::uuid[], %b::int[], %b::timestamptz[], %b::text[])"
        " AS r(domain_id, generation, next_due, reported)"
        " WHERE s.domain_id = r.domain_id AND s.generation = r.generation AND s.claimed_by = %s"
        " RETURNING s.domain_id::text",
        (probed_at, [d.domain_id for d, _, _ in rounds], [d.generation for d, _, _ in rounds],
         [n for _, n, _ in rounds], [";".join(sorted(r)) for _, _, r in rounds], worker),
    )  # fmt: skip
    return {r[0] for r in await cur.fetchall()}


_OVERDUE_CAP = 100_000


async def overdue(conn: Conn, *, grace_s: float) -> tuple[int, float]:
    """How many domains have been due for more than `grace_s` without a prober claiming
    them (counted up to a cap), and how long the oldest has waited, in seconds."""
    cur = await conn.execute(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(next_due)), 0) FROM"
        " (SELECT next_due FROM probe_schedule WHERE NOT paused"
        " AND next_due < now() - make_interval(secs => %s) ORDER BY next_due LIMIT %s) late",
        (grace_s, _OVERDUE_CAP),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), float(row[1])
