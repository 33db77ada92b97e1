"""The inventory's domain list: a projection of domain events and the classifier's verdicts."""

from __future__ import annotations

from certwatch.contracts import domain as dc
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
    match decode(event):
        case dc.DomainAdded() as e:
            await conn.execute(
                "INSERT INTO inventory_domains (domain_id, account_id, host, host_unicode, port, contact_ids,"
                " added_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO NOTHING",
                (e.domain_id, e.account_id, e.host, unicode_hostname(e.host), e.port, list(e.contact_ids),
                 e.added_at),
            )  # fmt: skip
        case dc.DomainEdited() as e:
            await conn.execute(
                # Editing the port of a domain whose enable failed is the seed's "edit and retry".
                "UPDATE inventory_domains SET contact_ids = coalesce(%s, contact_ids),"
                " status = CASE WHEN enabled AND status = 'ENABLE_FAILED' AND port <> %s THEN 'ENABLING'"
                " ELSE status END, port = %s WHERE domain_id = %s",
                (_list(e.contact_ids), e.port, e.port, e.domain_id),
            )
        case dc.MonitoringEnabled() as e:
            await conn.execute(
                "UPDATE inventory_domains SET enabled = true, generation = %s, status = 'ENABLING',"
                " primary_cause = NULL, causes = '{}', recommended_action = NULL,"
                " first_enabled_at = coalesce(first_enabled_at, %s), period_start = %s,"
                " service_ends_on = %s WHERE domain_id = %s",
                (e.generation, e.enabled_at, e.period_start, e.service_ends_on, e.domain_id),
            )
        case dc.RecheckRequested() as e:
            # Retrying after a failed enable check is an enable check again (ENABLING) in a new
            # generation; a legacy ENABLE_FAILED domain (no generation change) is checked as one too.
            await conn.execute(
                "UPDATE inventory_domains SET port = %s, generation = %s,"
                " status = CASE WHEN status = 'ENABLE_FAILED' THEN 'ENABLING' ELSE status END"
                " WHERE domain_id = %s AND enabled",
                (e.port, e.generation, e.domain_id),
            )
        case dc.MonitoringStarted() as e:
            await conn.execute(
                "UPDATE inventory_domains SET period_start = %s, service_ends_on = %s WHERE domain_id = %s",
                (e.period_start, e.service_ends_on, e.domain_id),
            )
        case dc.MonitoringDisabled() | dc.MonitoringServiceEnded() as e:
            status = "DISABLED" if isinstance(e, dc.MonitoringDisabled) else "SERVICE_ENDED"
            await conn.execute(
                "UPDATE inventory_domains SET enabled = false, status = %s WHERE domain_id = %s",
                (status, e.domain_id),
            )
        case dc.DomainRemoved() as e:
            await conn.execute("DELETE FROM inventory_domains WHERE domain_id = %s", (e.domain_id,))
        case DomainClassified() as e:
            verdict = e.verdict
            # Only a verdict for the current enable generation of an enabled domain counts.
            await conn.execute(
                "UPDATE inventory_domains SET status = %s, primary_cause = %s, causes = %s,"
                " recommended_action = %s, brand = %s, valid_from = %s, valid_to = %s,"
                " days_left = %s, last_checked_at = %s, period_start = coalesce(period_start, %s),"
                " service_ends_on = coalesce(service_ends_on, %s)"
                " WHERE domain_id = %s AND enabled AND generation = %s",
                (verdict.status, verdict.primary_cause, list(verdict.causes), e.recommended_action,
                 verdict.brand, verdict.valid_from, verdict.valid_to, verdict.days_left,
                 verdict.checked_at, *e.period(), e.domain_id, e.generation),
            )  # fmt: skip


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


DOMAIN_VIEW = Projection(
    name="inventory.domains",
    event_types=[*dc.DOMAIN_EVENTS, DOMAIN_CLASSIFIED],
    handle=_apply,
    reset_sql=["DELETE FROM inventory_domains"],
)
