"""vod's view of hosting's events (contracts/hosting.py; never hosting's tables or code):

- `vod_free_orders`: per hosting instance, the names applied for and where its ACME order
  stands, the `Status` of a `CertType=free` certificate for one of those names;
- `vod_hosting_certificates`: hosting's certificates (issued by its orders, or uploaded to
  it), which `CertType=cas` refers to by id like the ones uploaded through the VOD API.
"""

from __future__ import annotations

from psycopg.types.json import Jsonb

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import Payload, decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection
from certwatch.vod import uploads

APPLYING, FAILED, SUCCESS = "applying", "failed", "success"


def order_status(payload: Payload) -> str | None:
    """The free-certificate Status an instance event leads to; None when it changes none.

    A renewal's order neither hides the certificate being served (still `success`) nor
    fails it: only the first certificate of an instance is `applying` or `failed`."""
    match payload:
        case hc.ApplicationSubmitted():
            return APPLYING
        case hc.OrderRequested(renewal=False):
            return APPLYING
        case hc.OrderFailed(renewal=False):
            return FAILED
        case hc.CertificateIssued():  # CertificateRenewed too
            return SUCCESS
    return None


async def _keep_certificate(
    conn: Conn, certificate_id: str, account_id: str, origin: str, cert: hc.Certificate, at: object
) -> None:
    chain_pem = cert.cert_pem + cert.chain_pem
    leaf = uploads.summary_of_pem(chain_pem)
    await conn.execute(
        "INSERT INTO vod_hosting_certificates (certificate_id, account_id, cert_id, origin, chain_pem, summary, at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (certificate_id) DO NOTHING",
        (certificate_id, account_id, uploads.cert_id(account_id, leaf.sha256), origin, chain_pem,
         Jsonb(leaf.to_dict()), at),
    )  # fmt: skip


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    payload = decode(event)
    match payload:
        case hc.InstanceCreated() as e:
            await conn.execute(
                "INSERT INTO vod_free_orders (instance_id, account_id, at) VALUES (%s, %s, %s)"
                " ON CONFLICT (instance_id) DO NOTHING",
                (e.instance_id, e.account_id, e.at),
            )
        case hc.ApplicationSubmitted() as e:
            await conn.execute(
                "UPDATE vod_free_orders SET names = %s WHERE instance_id = %s",
                ([n.lower().rstrip(".") for n in e.application.names], e.instance_id),
            )
        case hc.CertificateIssued() as e:
            await _keep_certificate(conn, e.certificate_id, e.account_id, "hosted", e.certificate, e.at)
            await conn.execute(
                "UPDATE vod_free_orders SET certificate_id = %s WHERE instance_id = %s",
                (e.certificate_id, e.instance_id),
            )
        case hc.InstanceStateChanged(state=hc.InstanceState.ENDED) as e:
            await conn.execute(
                "UPDATE vod_free_orders SET ended = true WHERE instance_id = %s", (e.instance_id,)
            )
        case hc.CertificateUploaded() as e:
            await _keep_certificate(conn, e.certificate_id, e.account_id, "uploaded", e.certificate, e.at)
        case hc.CertificateDeleted() as e:
            await conn.execute(
                "DELETE FROM vod_hosting_certificates WHERE certificate_id = %s", (e.certificate_id,)
            )
    status = order_status(payload)
    if status is not None and isinstance(payload, hc.InstanceEvent):
        await conn.execute(
            "UPDATE vod_free_orders SET status = %s, at = %s WHERE instance_id = %s",
            (status, payload.at, payload.instance_id),
        )


HOSTING_VIEWS = Projection(
    name="vod.hosting",
    event_types=[
        *(t.TYPE for t in hc.INSTANCE_EVENTS),
        hc.CertificateUploaded.TYPE,
        hc.CertificateDeleted.TYPE,
    ],
    handle=_apply,
    reset_sql=["DELETE FROM vod_free_orders", "DELETE FROM vod_hosting_certificates"],
)
