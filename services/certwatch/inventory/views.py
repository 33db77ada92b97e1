"""The inventory's domain list: a projection of domain events and the classifier's verdicts."""

from __future__ import annotations

from certwatch.classifier.events import DOMAIN_CLASSIFIED
from certwatch.inventory import domain as d
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection
from certwatch.rules.causes import Status
from certwatch.rules.targets import unicode_hostname

#: Every status the domain list shows: the classifier's, plus the ones this view sets itself.
LIST_STATUSES: tuple[str, ...] = ("NOT_ENABLED", *Status, "DISABLED", "SERVICE_ENDED")


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    data = event.data
    if event.type == d.DOMAIN_ADDED:
        await conn.execute(
            "INSERT INTO inventory_domains (domain_id, account_id, host, host_unicode, port, contact_ids,"
            " added_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO NOTHING",
            (data["domain_id"], data["account_id"], data["host"], unicode_hostname(data["host"]),
             data["port"], data.get("contact_ids", []), data["added_at"]),
        )  # fmt: skip
    elif event.type == d.DOMAIN_EDITED:
        await conn.execute(
            # Editing the port of a domain whose enable failed is the seed's "edit and retry".
            "UPDATE inventory_domains SET contact_ids = coalesce(%s, contact_ids),"
            " status = CASE WHEN enabled AND status = 'ENABLE_FAILED' AND port <> %s THEN 'ENABLING'"
            " ELSE status END, port = %s WHERE domain_id = %s",
            (data.get("contact_ids"), data["port"], data["port"], data["domain_id"]),
        )
    elif event.type == d.MONITORING_ENABLED:
        await conn.execute(
            "UPDATE inventory_domains SET enabled = true, generation = %s, status = 'ENABLING',"
            " primary_cause = NULL, causes = '{}', recommended_action = NULL,"
            " first_enabled_at = coalesce(first_enabled_at, %s), period_start = %s,"
            " service_ends_on = %s WHERE domain_id = %s",
            (data["generation"], data["enabled_at"], data["period_start"], data["service_ends_on"],
             data["domain_id"]),
        )  # fmt: skip
    elif event.type == d.RECHECK_REQUESTED:
        # Retrying after a failed enable check is an enable check again (ENABLING) in a new
        # generation; a legacy ENABLE_FAILED domain (no generation change) is checked as one too.
        await conn.execute(
            "UPDATE inventory_domains SET port = %s, generation = %s,"
            " status = CASE WHEN status = 'ENABLE_FAILED' THEN 'ENABLING' ELSE status END"
            " WHERE domain_id = %s AND enabled",
            (data["port"], data["generation"], data["domain_id"]),
        )
    elif event.type == d.MONITORING_STARTED:
        await conn.execute(
            "UPDATE inventory_domains SET period_start = %s, service_ends_on = %s WHERE domain_id = %s",
            (data["period_start"], data["service_ends_on"], data["domain_id"]),
        )
    elif event.type in (d.MONITORING_DISABLED, d.SERVICE_ENDED):
        status = "DISABLED" if event.type == d.MONITORING_DISABLED else "SERVICE_ENDED"
        await conn.execute(
            "UPDATE inventory_domains SET enabled = false, status = %s WHERE domain_id = %s",
            (status, data["domain_id"]),
        )
    elif event.type == d.DOMAIN_REMOVED:
        await conn.execute("DELETE FROM inventory_domains WHERE domain_id = %s", (data["domain_id"],))
    elif event.type == DOMAIN_CLASSIFIED:
        verdict = data["verdict"]
        # Only a verdict for the current enable generation of an enabled domain counts.
        await conn.execute(
            "UPDATE inventory_domains SET status = %s, primary_cause = %s, causes = %s,"
            " recommended_action = %s, brand = %s, valid_from = %s, valid_to = %s,"
            " days_left = %s, last_checked_at = %s, period_start = coalesce(period_start, %s),"
            " service_ends_on = coalesce(service_ends_on, %s)"
            " WHERE domain_id = %s AND enabled AND generation = %s",
            (verdict["status"], verdict.get("primary_cause"), verdict.get("causes", []),
             data.get("recommended_action"), verdict.get("brand"), verdict.get("valid_from"),
             verdict.get("valid_to"), verdict.get("days_left"), verdict["checked_at"],
             *d.period_from_verdict(data), data["domain_id"], data["generation"]),
        )  # fmt: skip


DOMAIN_VIEW = Projection(
    name="inventory.domains",
    event_types=[*d.DOMAIN_EVENTS, DOMAIN_CLASSIFIED],
    handle=_apply,
    reset_sql=["DELETE FROM inventory_domains"],
)
