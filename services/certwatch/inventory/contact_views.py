"""The contact list: a projection of contact events (ciphertext only)."""

from __future__ import annotations

from certwatch.contracts import contacts as cc
from certwatch.contracts.payload import decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    match decode(event):
        case cc.ContactCreated() | cc.ContactUpdated() as e:
            await conn.execute(
                "INSERT INTO inventory_contacts (contact_id, account_id, sealed, has_secret, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (contact_id) DO UPDATE SET"
                " sealed = excluded.sealed, has_secret = excluded.has_secret,"
                " updated_at = excluded.updated_at",
                (e.contact_id, e.account_id, e.sealed, e.has_secret, event.recorded_at, event.recorded_at),
            )
        case cc.ContactDeleted() as e:
            await conn.execute("DELETE FROM inventory_contacts WHERE contact_id = %s", (e.contact_id,))


CONTACT_VIEW = Projection(
    name="inventory.contacts", event_types=cc.CONTACT_EVENTS, handle=_apply,
    reset_sql=["DELETE FROM inventory_contacts"],
)  # fmt: skip
