"""vod's views of its own events: the accelerated domains and the uploaded certificates."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from certwatch.contracts import vod as vc
from certwatch.contracts.payload import decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection
from certwatch.vod import uploads


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    match decode(event):
        case vc.VodDomainAdded() as e:
            await conn.execute(
                "INSERT INTO vod_domains (vod_domain_id, account_id, domain_name, cname, sources, scope,"
                " created_at, modified_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (vod_domain_id) DO NOTHING",
                (e.vod_domain_id, e.account_id, e.domain_name, e.cname, e.sources, e.scope, e.added_at, e.added_at),
            )  # fmt: skip
        case vc.VodDomainRemoved() as e:
            await conn.execute("DELETE FROM vod_domains WHERE vod_domain_id = %s", (e.vod_domain_id,))
        case vc.VodCertificateUploaded() as e:
            leaf = uploads.summary_of_pem(e.chain_pem)
            await conn.execute(
                "INSERT INTO vod_uploaded_certificates (cert_id, account_id, cert_name, domain_name, chain_pem,"
                " summary, sealed_private_key, uploaded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (cert_id) DO UPDATE SET cert_name = excluded.cert_name,"
                " sealed_private_key = excluded.sealed_private_key, uploaded_at = excluded.uploaded_at",
                (e.cert_id, e.account_id, e.cert_name, e.domain_name, e.chain_pem, Jsonb(leaf.to_dict()),
                 e.sealed_private_key, e.uploaded_at),
            )  # fmt: skip
        case vc.VodDomainCertificateSet() as e:
            await conn.execute(
                "UPDATE vod_domains SET ssl_protocol = %s, cert_type = %s, cert_id = %s, cert_name = %s,"
                " modified_at = %s WHERE vod_domain_id = %s",
                (e.ssl_protocol, e.cert_type, e.cert_id, e.cert_name, e.set_at, e.vod_domain_id),
            )


DOMAIN_VIEWS = Projection(
    name="vod.domains",
    event_types=list(vc.VOD_EVENTS),
    handle=_apply,
    reset_sql=["DELETE FROM vod_domains", "DELETE FROM vod_uploaded_certificates"],
    subject=vc.STREAM.subject,
)
