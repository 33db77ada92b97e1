"""The status view (`classifier_status`, one row a domain, and its history), and one log
line per verdict change.

A page is applied set-based: the page's rows in one query (which also gives the previous
verdicts the log lines compare with), the latest verdict per domain upserted in one
statement, every verdict added to the history in another."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from certwatch.contracts import status as sc
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.page_tables import PageTable, Row
from certwatch.platform.projection import Projection

verdicts_log = logging.getLogger("certwatch.classifier.verdicts")

_VERDICT_COLUMNS = {
    "domain_id": "uuid", "account_id": "uuid", "status": "text", "primary_cause": "text", "causes": "text[]",
    "checked_at": "timestamptz", "verdict": "jsonb",
}  # fmt: skip
STATUS = PageTable("classifier_status", "domain_id", {**_VERDICT_COLUMNS, "generation": "int4"})
HISTORY = PageTable(
    "classifier_status_history",
    "position",
    {**_VERDICT_COLUMNS, "position": "int8", "transaction_id": "xid8"},
)


def _verdict_row(event: RecordedEvent, classified: sc.DomainClassified) -> Row:
    verdict = classified.verdict
    return {
        "domain_id": classified.domain_id, "account_id": classified.account_id, "status": verdict.status.value,
        "primary_cause": verdict.primary_cause.value if verdict.primary_cause else None,
        "causes": [c.value for c in verdict.causes], "checked_at": verdict.checked_at,
        "verdict": event.data["verdict"],
    }  # fmt: skip


def fold(
    loaded: Mapping[str, Row], page: Sequence[tuple[RecordedEvent, sc.DomainClassified]]
) -> tuple[dict[str, Row | None], list[Row]]:
    """Each domain's status row after the page (the account of a row, once there, stays),
    and the page's history rows."""
    rows: dict[str, Row | None] = {}
    history = []
    for event, classified in page:
        found = _verdict_row(event, classified)
        history.append({**found, "position": event.position, "transaction_id": event.transaction_id})
        before = rows.get(classified.domain_id) or loaded.get(classified.domain_id)
        account_id = before["account_id"] if before is not None else found["account_id"]
        rows[classified.domain_id] = {**found, "account_id": account_id, "generation": classified.generation}
    return rows, history


async def _apply_statuses(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    page = [(e, sc.DomainClassified.of(e)) for e in events]
    loaded = await STATUS.load(conn, {c.domain_id for _, c in page})
    rows, history = fold(loaded, page)
    await STATUS.write(conn, loaded, rows)
    await HISTORY.insert(conn, history)
    _log_changes(loaded, page)


def _log_changes(
    loaded: Mapping[str, Row], page: Sequence[tuple[RecordedEvent, sc.DomainClassified]]
) -> None:
    """One log line per verdict change (status or primary cause)."""
    last = {k: (r["status"], r["primary_cause"]) for k, r in loaded.items()}
    for event, classified in page:
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


STATUS_VIEW = Projection(
    name="classifier.status",
    event_types=[sc.DOMAIN_CLASSIFIED],
    handle_batch=_apply_statuses,
    reset_sql=["DELETE FROM classifier_status", "DELETE FROM classifier_status_history"],
    subject=sc.STREAM.subject,
)
