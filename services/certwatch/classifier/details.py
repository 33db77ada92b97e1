"""The Monitoring Details projection: what the report shows, one row per domain.

Built from compact events only (domain lifecycle, DomainClassified, CertificateChainObserved,
OwnershipChanged), never from ProbeCompleted, so probe payloads can shrink or expire
without touching the report. Like the inventory's domain list, a verdict counts only for
the current enable generation of an enabled domain.
"""

from __future__ import annotations

from psycopg.types.json import Jsonb

from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.contracts.listing import row_change, update_sql
from certwatch.contracts.payload import decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    match decode(event):
        case sc.DomainClassified() as e:
            await conn.execute(
                "UPDATE classifier_details SET status = %s, classified = %s,"
                " period_start = coalesce(period_start, %s), service_ends_on = coalesce(service_ends_on, %s)"
                " WHERE domain_id = %s AND enabled AND generation = %s",
                (e.verdict.status, Jsonb(event.data), *e.period(), e.domain_id, e.generation),
            )
        case sc.CertificateChainObserved() as e:
            for cert in e.certificates:
                await conn.execute(
                    "INSERT INTO classifier_certificates (sha256, facts) VALUES (%s, %s)"
                    " ON CONFLICT (sha256) DO NOTHING",
                    (cert["sha256"], Jsonb(cert)),
                )
            await conn.execute(
                "UPDATE classifier_details SET serving = %s, chain_observed_at = %s WHERE domain_id = %s",
                (Jsonb(event.data["serving"]), e.observed_at, e.domain_id),
            )
        case sc.OwnershipChanged() as e:
            await conn.execute(
                "INSERT INTO classifier_ownership_changes (position, transaction_id, domain_id,"
                " account_id, observed_at, kinds, changes) VALUES (%s, %s::text::xid8, %s, %s, %s, %s, %s)",
                (event.position, str(event.transaction_id), e.domain_id, e.account_id, e.observed_at,
                 list(e.kinds), Jsonb(event.data["changes"])),
            )  # fmt: skip
        case dc.DomainAdded() as e:
            await conn.execute(
                "INSERT INTO classifier_details (domain_id, account_id, host, port, contact_ids)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO NOTHING",
                (e.domain_id, e.account_id, e.host, e.port, list(e.contact_ids)),
            )
        case payload if (change := row_change(payload)) is not None:
            if change.removed:
                for sql in ("DELETE FROM classifier_details WHERE domain_id = %s",
                            "DELETE FROM classifier_ownership_changes WHERE domain_id = %s"):  # fmt: skip
                    await conn.execute(sql, (change.domain_id,))
            else:
                await conn.execute(*update_sql("classifier_details", change))


DETAILS_VIEW = Projection(
    name="classifier.details",
    event_types=[*dc.DOMAIN_EVENTS, sc.DOMAIN_CLASSIFIED, sc.CERTIFICATE_CHAIN_OBSERVED,
                 sc.OWNERSHIP_CHANGED],
    handle=_apply,
    reset_sql=["DELETE FROM classifier_details", "DELETE FROM classifier_certificates",
               "DELETE FROM classifier_ownership_changes"],
)  # fmt: skip
