"""The Monitoring Details projection: what the report shows, one row per domain.

Built from compact events only (domain lifecycle, DomainClassified, CertificateChainObserved,
OwnershipChanged), never from ProbeCompleted, so probe payloads can shrink or expire
without touching the report. Like the inventory's domain list, a verdict counts only for
the current enable generation of an enabled domain.
"""

from __future__ import annotations

from psycopg.types.json import Jsonb

from certwatch.classifier import events as cev
from certwatch.inventory import domain as d
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


async def _lifecycle(conn: Conn, event: RecordedEvent) -> None:
    data = event.data
    if event.type == d.DOMAIN_ADDED:
        await conn.execute(
            "INSERT INTO classifier_details (domain_id, account_id, host, port, contact_ids)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO NOTHING",
            (data["domain_id"], data["account_id"], data["host"], data["port"],
             data.get("contact_ids", [])),
        )  # fmt: skip
    elif event.type == d.DOMAIN_EDITED:
        await conn.execute(
            "UPDATE classifier_details SET port = %s, contact_ids = coalesce(%s, contact_ids)"
            " WHERE domain_id = %s",
            (data["port"], data.get("contact_ids"), data["domain_id"]),
        )
    elif event.type == d.MONITORING_ENABLED:
        await conn.execute(
            "UPDATE classifier_details SET enabled = true, generation = %s, status = 'ENABLING',"
            " period_start = %s, service_ends_on = %s WHERE domain_id = %s",
            (data["generation"], data["period_start"], data["service_ends_on"], data["domain_id"]),
        )
    elif event.type == d.RECHECK_REQUESTED:
        await conn.execute(
            "UPDATE classifier_details SET port = %s, generation = %s,"
            " status = CASE WHEN status = 'ENABLE_FAILED' THEN 'ENABLING' ELSE status END"
            " WHERE domain_id = %s AND enabled",
            (data["port"], data["generation"], data["domain_id"]),
        )
    elif event.type == d.MONITORING_STARTED:
        await conn.execute(
            "UPDATE classifier_details SET period_start = %s, service_ends_on = %s WHERE domain_id = %s",
            (data["period_start"], data["service_ends_on"], data["domain_id"]),
        )
    elif event.type in (d.MONITORING_DISABLED, d.SERVICE_ENDED):
        status = "DISABLED" if event.type == d.MONITORING_DISABLED else "SERVICE_ENDED"
        await conn.execute(
            "UPDATE classifier_details SET enabled = false, status = %s WHERE domain_id = %s",
            (status, data["domain_id"]),
        )
    elif event.type == d.DOMAIN_REMOVED:
        for sql in ("DELETE FROM classifier_details WHERE domain_id = %s",
                    "DELETE FROM classifier_ownership_changes WHERE domain_id = %s"):  # fmt: skip
            await conn.execute(sql, (data["domain_id"],))


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    data = event.data
    if event.type == cev.DOMAIN_CLASSIFIED:
        await conn.execute(
            "UPDATE classifier_details SET status = %s, classified = %s,"
            " period_start = coalesce(period_start, %s), service_ends_on = coalesce(service_ends_on, %s)"
            " WHERE domain_id = %s AND enabled AND generation = %s",
            (data["verdict"]["status"], Jsonb(data), *d.period_from_verdict(data), data["domain_id"],
             data["generation"]),
        )  # fmt: skip
    elif event.type == cev.CERTIFICATE_CHAIN_OBSERVED:
        for cert in data["certificates"]:
            await conn.execute(
                "INSERT INTO classifier_certificates (sha256, facts) VALUES (%s, %s)"
                " ON CONFLICT (sha256) DO NOTHING",
                (cert["sha256"], Jsonb(cert)),
            )
        await conn.execute(
            "UPDATE classifier_details SET serving = %s, chain_observed_at = %s WHERE domain_id = %s",
            (Jsonb(data["serving"]), data["observed_at"], data["domain_id"]),
        )
    elif event.type == cev.OWNERSHIP_CHANGED:
        await conn.execute(
            "INSERT INTO classifier_ownership_changes (position, transaction_id, domain_id,"
            " account_id, observed_at, kinds, changes) VALUES (%s, %s::text::xid8, %s, %s, %s, %s, %s)",
            (event.position, str(event.transaction_id), data["domain_id"], data["account_id"],
             data["observed_at"], data["kinds"], Jsonb(data["changes"])),
        )  # fmt: skip
    else:
        await _lifecycle(conn, event)


DETAILS_VIEW = Projection(
    name="classifier.details",
    event_types=[*d.DOMAIN_EVENTS, cev.DOMAIN_CLASSIFIED, cev.CERTIFICATE_CHAIN_OBSERVED,
                 cev.OWNERSHIP_CHANGED],
    handle=_apply,
    reset_sql=["DELETE FROM classifier_details", "DELETE FROM classifier_certificates",
               "DELETE FROM classifier_ownership_changes"],
)  # fmt: skip
