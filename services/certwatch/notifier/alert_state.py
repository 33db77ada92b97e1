"""Per-domain alert state: which status a domain is in and since when (only changes move `since`)."""

from __future__ import annotations

from certwatch.contracts.status import STREAM, DomainClassified
from certwatch.platform.eventlog import Conn
from certwatch.platform.projection import of_payloads


async def _apply(conn: Conn, e: DomainClassified) -> None:
    verdict = e.verdict
    await conn.execute(
        "INSERT INTO notifier_alert_state (domain_id, account_id, status, causes, since, checked_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO UPDATE SET"
        " since = CASE WHEN notifier_alert_state.status = excluded.status"
        "   AND notifier_alert_state.causes = excluded.causes"
        "   THEN notifier_alert_state.since ELSE excluded.since END,"
        " status = excluded.status, causes = excluded.causes, checked_at = excluded.checked_at",
        (e.domain_id, e.account_id, verdict.status,
         list(verdict.causes), verdict.checked_at, verdict.checked_at),
    )  # fmt: skip


ALERT_STATE = of_payloads(
    "notifier.alert_state",
    DomainClassified,
    _apply,
    subject=STREAM.subject,
    reset_sql=["DELETE FROM notifier_alert_state"],
)
