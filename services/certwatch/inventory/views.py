"""The inventory's domain list: a projection of domain events and the classifier's verdicts."""

from __future__ import annotations

from certwatch.contracts import domain as dc
from certwatch.contracts.listing import row_change, update_sql
from certwatch.contracts.payload import decode
from certwatch.contracts.status import DOMAIN_CLASSIFIED, DomainClassified
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection
from certwatch.rules.causes import Status
from certwatch.rules.targets import unicode_hostname

#: Every status the domain list shows: the classifier's, plus the ones this view sets itself.
LIST_STATUSES: tuple[str, ...] = ("NOT_ENABLED", *Status, "DISABLED", "SERVICE_ENDED")


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    payload = decode(event)
    change = row_change(payload)
    if isinstance(payload, dc.DomainAdded):
        await conn.execute(
            "INSERT INTO inventory_domains (domain_id, account_id, host, host_unicode, port, contact_ids,"
            " added_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO NOTHING",
            (payload.domain_id, payload.account_id, payload.host, unicode_hostname(payload.host), payload.port,
             list(payload.contact_ids), payload.added_at),
        )  # fmt: skip
    elif isinstance(payload, DomainClassified):
        verdict = payload.verdict
        # Only a verdict for the current enable generation of an enabled domain counts.
        await conn.execute(
            "UPDATE inventory_domains SET status = %s, primary_cause = %s, causes = %s,"
            " recommended_action = %s, brand = %s, valid_from = %s, valid_to = %s,"
            " days_left = %s, last_checked_at = %s, period_start = coalesce(period_start, %s),"
            " service_ends_on = coalesce(service_ends_on, %s)"
            " WHERE domain_id = %s AND enabled AND generation = %s",
            (verdict.status, verdict.primary_cause, list(verdict.causes), payload.recommended_action,
             verdict.brand, verdict.valid_from, verdict.valid_to, verdict.days_left,
             verdict.checked_at, *payload.period(), payload.domain_id, payload.generation),
        )  # fmt: skip
    elif change is not None and change.removed:
        await conn.execute("DELETE FROM inventory_domains WHERE domain_id = %s", (change.domain_id,))
    elif change is not None:
        # An enable clears the verdict of the enable before; the first one dates the domain.
        extra, params = (
            (_ENABLED, (payload.enabled_at,)) if isinstance(payload, dc.MonitoringEnabled) else ("", ())
        )
        await conn.execute(*update_sql("inventory_domains", change, extra=extra, extra_params=params))


_ENABLED = (", primary_cause = NULL, causes = '{}', recommended_action = NULL,"
            " first_enabled_at = coalesce(first_enabled_at, %s)")  # fmt: skip


DOMAIN_VIEW = Projection(
    name="inventory.domains",
    event_types=[*dc.DOMAIN_EVENTS, DOMAIN_CLASSIFIED],
    handle=_apply,
    reset_sql=["DELETE FROM inventory_domains"],
    page=200,  # every command waits for it (read-your-writes): short pages, short waits
)
