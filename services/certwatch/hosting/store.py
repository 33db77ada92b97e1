"""Instances as event streams, with their rows written in the same transaction as the events.

`load` folds an instance's stream; `record` appends new events at the version it was
loaded at (a concurrent writer makes it fail, never overwrite) and updates the
`hosting_instances` / `hosting_certificates` rows that listing and the due scan read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import Payload, decode
from certwatch.hosting import lifecycle
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import NewEvent

Change = tuple[lifecycle.Instance | None, int, Sequence[Payload]]
"""(instance as loaded or None for a new one, its stream version, the events to add)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    instance: lifecycle.Instance
    version: int


async def load(log: EventLog, conn: Conn, instance_id: str, *, for_update: bool = False) -> Loaded | None:
    events = await log.read_stream(hc.stream_id(instance_id), conn=conn, for_update=for_update)
    if not events:
        return None
    return Loaded(lifecycle.fold([decode(e) for e in events]), events[-1].stream_version)


async def record(
    log: EventLog, conn: Conn, changes: Sequence[Change], metadata: dict[str, str]
) -> list[lifecycle.Instance]:
    """Append every change in one transaction (the caller's); the instances after it."""
    batch: list[tuple[str, Sequence[NewEvent], int | None]] = []
    after: list[lifecycle.Instance] = []
    for instance, version, events in changes:
        state = instance
        for e in events:
            state = lifecycle.evolve(state, e)
        assert state is not None
        after.append(state)
        batch.append((hc.stream_id(state.instance_id), [e.new_event(metadata=metadata) for e in events],
                      version))  # fmt: skip
    await log.append_batch(batch, conn=conn)
    for (_, version, events), state in zip(changes, after, strict=True):
        await _write_row(conn, state, version + len(events))
        for e in events:
            if isinstance(e, hc.CertificateIssued):
                await write_certificate(conn, e, e.instance_id)
            elif isinstance(e, hc.OrderPlaced):
                await conn.execute(
                    "INSERT INTO hosting_orders (order_url, instance_id) VALUES (%s, %s)",
                    (e.order_url, e.instance_id),
                )
    return after


async def _write_row(conn: Conn, i: lifecycle.Instance, version: int) -> None:
    current = i.current
    await conn.execute(
        "INSERT INTO hosting_instances (instance_id, account_id, subscription_id, year, years, state,"
        " version, due_at, certificate_id, renew_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (instance_id) DO UPDATE SET state = excluded.state, version = excluded.version,"
        " due_at = excluded.due_at, certificate_id = excluded.certificate_id, renew_at = excluded.renew_at",
        (i.instance_id, i.account_id, i.subscription_id, i.year, i.years, i.state.value, version,
         lifecycle.due_at(i), current.certificate_id if current else None,
         current.renew_at if current else None),
    )  # fmt: skip


async def unclaimed(conn: Conn, order_urls: Sequence[str]) -> list[str]:
    """The URLs no instance has recorded, in the order given."""
    cur = await conn.execute(
        "SELECT order_url FROM hosting_orders WHERE order_url = ANY(%s)", (list(order_urls),)
    )
    claimed = {r[0] for r in await cur.fetchall()}
    return [u for u in order_urls if u not in claimed]


async def write_certificate(
    conn: Conn, e: hc.CertificateIssued | hc.CertificateUploaded, instance_id: str | None
) -> None:
    c = e.certificate
    await conn.execute(
        "INSERT INTO hosting_certificates (certificate_id, account_id, instance_id, serial, not_before,"
        " not_after, names, issuer, cert_pem, chain_pem, sealed_key, uploaded, recorded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (e.certificate_id, e.account_id, instance_id, c.serial, c.not_before, c.not_after, c.names,
         c.issuer, c.cert_pem, c.chain_pem, e.sealed_key, instance_id is None, e.at),
    )  # fmt: skip
