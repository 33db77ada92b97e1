"""The hosting tables as a projection of the `hosting-*` and `hosting_cert-*` streams.

`hosting_instances` (listing, the orchestrator's due scan), `hosting_certificates`
(listing, download, expiry of uploads) and `hosting_orders` (order URLs an instance claims)
are derived rows: `certwatch admin rebuild hosting.views` empties them and replays the log
into the same rows. Commands wait for the projection after they append (read-your-writes,
`caught_up`), as the inventory's do.

An instance's row depends on its whole fold (`due_at`, the current certificate), so a page
reads each touched instance's stream once, up to the last version the page holds, and
writes the row from that fold.
"""

from __future__ import annotations

from collections.abc import Sequence

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import Payload, decode
from certwatch.hosting import lifecycle
from certwatch.platform.eventlog import Conn, Cursor, EventLog
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection, catch_up_past

_CERT_EVENTS = (hc.CertificateUploaded, hc.UploadedCertificateExpiring, hc.CertificateDeleted)


async def _apply_page(event_log: EventLog, conn: Conn, events: Sequence[RecordedEvent]) -> None:
    upto: dict[str, int] = {}
    for event in events:
        payload = decode(event)
        if isinstance(payload, hc.InstanceEvent):
            upto[event.stream_id] = max(upto.get(event.stream_id, 0), event.stream_version)
        await _apply_event(conn, payload)
    streams = await event_log.read_streams(list(upto), conn=conn)
    for stream_id, last in upto.items():
        folded = [decode(e) for e in streams[stream_id] if e.stream_version <= last]
        await _write_instance(conn, lifecycle.fold(folded), last, folded[0])


async def _apply_event(conn: Conn, p: Payload) -> None:
    if isinstance(p, hc.CertificateIssued):  # and CertificateRenewed
        await _write_certificate(conn, p, p.instance_id)
    elif isinstance(p, hc.OrderPlaced):
        await conn.execute(
            "INSERT INTO hosting_orders (order_url, instance_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (p.order_url, p.instance_id),
        )
    elif isinstance(p, hc.CertificateUploaded):
        await _write_certificate(conn, p, None)
    elif isinstance(p, hc.UploadedCertificateExpiring):
        await conn.execute(
            "UPDATE hosting_certificates SET expiry_announced = true WHERE certificate_id = %s",
            (p.certificate_id,),
        )
    elif isinstance(p, hc.CertificateDeleted):
        await conn.execute("DELETE FROM hosting_certificates WHERE certificate_id = %s", (p.certificate_id,))


async def _write_instance(conn: Conn, i: lifecycle.Instance, version: int, created: Payload) -> None:
    assert isinstance(created, hc.InstanceCreated)
    current = i.current
    await conn.execute(
        "INSERT INTO hosting_instances (instance_id, account_id, subscription_id, year, years, state,"
        " version, due_at, certificate_id, renew_at, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state, version = excluded.version,"
        " due_at = excluded.due_at, certificate_id = excluded.certificate_id, renew_at = excluded.renew_at",
        (i.instance_id, i.account_id, i.subscription_id, i.year, i.years, i.state.value, version,
         lifecycle.due_at(i), current.certificate_id if current else None,
         current.renew_at if current else None, created.at),
    )  # fmt: skip


async def _write_certificate(
    conn: Conn, e: hc.CertificateIssued | hc.CertificateUploaded, instance_id: str | None
) -> None:
    c = e.certificate
    await conn.execute(
        "INSERT INTO hosting_certificates (certificate_id, account_id, instance_id, serial, not_before,"
        " not_after, names, issuer, cert_pem, chain_pem, sealed_key, uploaded, recorded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (e.certificate_id, e.account_id, instance_id, c.serial, c.not_before, c.not_after, c.names,
         c.issuer, c.cert_pem, c.chain_pem, e.sealed_key, instance_id is None, e.at),
    )  # fmt: skip


NAME = "hosting.views"


def projection(event_log: EventLog) -> Projection:
    """The projection (its handler folds instance streams, so it reads the log)."""

    async def handle(conn: Conn, events: Sequence[RecordedEvent]) -> None:
        await _apply_page(event_log, conn, events)

    return Projection(
        name=NAME,
        event_types=[t.TYPE for t in (*hc.INSTANCE_EVENTS, *_CERT_EVENTS)],
        handle_batch=handle,
        reset_sql=[
            "DELETE FROM hosting_orders",
            "DELETE FROM hosting_certificates",
            "DELETE FROM hosting_instances",
        ],
        page=500,  # commands wait on it: short pages keep that wait short
    )


async def caught_up(event_log: EventLog, views: Projection, cursor: Cursor | None) -> None:
    """Read-your-writes: return once the rows reflect everything up to `cursor`."""
    if cursor is not None:
        await catch_up_past(event_log, views, cursor)
