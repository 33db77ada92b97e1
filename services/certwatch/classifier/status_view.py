"""The status view (`classifier_status`, one row a domain, and its history), and one log
line per verdict change."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from psycopg.types.json import Jsonb

from certwatch.contracts import status as sc
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection

verdicts_log = logging.getLogger("certwatch.classifier.verdicts")


async def _apply_status(conn: Conn, event: RecordedEvent, classified: sc.DomainClassified) -> None:
    verdict = classified.verdict
    row = (classified.domain_id, classified.account_id, verdict.status, verdict.primary_cause,
           list(verdict.causes), verdict.checked_at)  # fmt: skip
    await conn.execute(
        "INSERT INTO classifier_status (domain_id, account_id, status, primary_cause, causes,"
        " checked_at, generation, verdict) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (domain_id) DO UPDATE SET status = excluded.status,"
        " primary_cause = excluded.primary_cause, causes = excluded.causes,"
        " checked_at = excluded.checked_at, generation = excluded.generation,"
        " verdict = excluded.verdict",
        (*row, classified.generation, _json(event.data["verdict"])),
    )
    await conn.execute(
        "INSERT INTO classifier_status_history (domain_id, account_id, status, primary_cause,"
        " causes, checked_at, position, transaction_id, verdict)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::text::xid8, %s)",
        (*row, event.position, str(event.transaction_id), _json(event.data["verdict"])),
    )


async def _apply_statuses(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    """The status view, and one log line per verdict change (status or primary cause): the
    page's previous statuses come in one query, so the log costs a round trip per page."""
    page = [(e, sc.DomainClassified.of(e)) for e in events]
    cur = await conn.execute(
        "SELECT domain_id::text, status, primary_cause FROM classifier_status WHERE domain_id = ANY(%b::uuid[])",
        (list({c.domain_id for _, c in page}),),
    )
    last: dict[str, tuple[str | None, str | None]] = {
        row[0]: (row[1], row[2]) for row in await cur.fetchall()
    }
    for event, classified in page:
        await _apply_status(conn, event, classified)
        domain_id, verdict = classified.domain_id, classified.verdict
        before = last.get(domain_id, (None, None))
        now = (verdict.status.value, verdict.primary_cause.value if verdict.primary_cause else None)
        if now != before:
            verdicts_log.info(
                "domain %s verdict %s -> %s (%s)", domain_id, before[0] or "none", now[0], now[1] or "no cause",
                extra={"domain_id": domain_id, "account_id": classified.account_id, "previous": before[0],
                       "status": now[0], "primary_cause": now[1], "position": event.position},
            )  # fmt: skip
        last[domain_id] = now


def _json(value: object) -> Jsonb:
    return Jsonb(value)


STATUS_VIEW = Projection(
    name="classifier.status",
    event_types=[sc.DOMAIN_CLASSIFIED],
    handle_batch=_apply_statuses,
    reset_sql=["DELETE FROM classifier_status", "DELETE FROM classifier_status_history"],
    subject=sc.STREAM.subject,
)
