"""What each monitored host serves, for the VOD certificate API: a projection of the domain
lifecycle and the classifier's `CertificateChainObserved` events (contracts only, never
another service's tables)."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.contracts.payload import decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    match decode(event):
        case dc.DomainAdded() as e:
            await conn.execute(
                "INSERT INTO vod_observed_hosts (domain_id, account_id, host, port) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (domain_id) DO NOTHING",
                (e.domain_id, e.account_id, e.host, e.port),
            )
        case dc.DomainEdited() as e:
            await conn.execute(
                "UPDATE vod_observed_hosts SET host = coalesce(%s, host), port = %s WHERE domain_id = %s",
                (e.host, e.port, e.domain_id),
            )
        case dc.DomainRemoved() as e:
            await conn.execute("DELETE FROM vod_observed_hosts WHERE domain_id = %s", (e.domain_id,))
        case sc.CertificateChainObserved() as e:
            for cert in e.certificates:
                await conn.execute(
                    "INSERT INTO vod_certificates (sha256, facts) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING",
                    (cert["sha256"], Jsonb(cert)),
                )
            await conn.execute(
                "UPDATE vod_observed_hosts SET serving = %s, observed_at = %s WHERE domain_id = %s",
                (Jsonb(event.data["serving"]), e.observed_at, e.domain_id),
            )


OBSERVED_HOSTS = Projection(
    name="vod.observed_hosts",
    event_types=[dc.DOMAIN_ADDED, dc.DOMAIN_EDITED, dc.DOMAIN_REMOVED, sc.CERTIFICATE_CHAIN_OBSERVED],
    handle=_apply,
    reset_sql=["DELETE FROM vod_observed_hosts", "DELETE FROM vod_certificates"],
)
