"""The contact list: a projection of contact events (ciphertext only)."""

from __future__ import annotations

from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection

CONTACT_CREATED = "ContactCreated"
CONTACT_UPDATED = "ContactUpdated"
CONTACT_DELETED = "ContactDeleted"
CONTACT_EVENTS = (CONTACT_CREATED, CONTACT_UPDATED, CONTACT_DELETED)


def stream_id(contact_id: str) -> str:
    return f"contact-{contact_id}"


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    data = event.data
    if event.type in (CONTACT_CREATED, CONTACT_UPDATED):
        await conn.execute(
            "INSERT INTO inventory_contacts (contact_id, account_id, sealed, has_secret, created_at,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (contact_id) DO UPDATE SET"
            " sealed = excluded.sealed, has_secret = excluded.has_secret,"
            " updated_at = excluded.updated_at",
            (data["contact_id"], data["account_id"], data["sealed"], data["has_secret"],
             event.recorded_at, event.recorded_at),
        )  # fmt: skip
    elif event.type == CONTACT_DELETED:
        await conn.execute("DELETE FROM inventory_contacts WHERE contact_id = %s", (data["contact_id"],))


CONTACT_VIEW = Projection(
    name="inventory.contacts", event_types=CONTACT_EVENTS, handle=_apply,
    reset_sql=["DELETE FROM inventory_contacts"],
)  # fmt: skip
