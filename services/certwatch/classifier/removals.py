"""A removed domain's verdict state and served chains go: re-adding it starts afresh."""

from __future__ import annotations

from collections.abc import Sequence

from certwatch.contracts import domain as dc
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


async def _forget(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    removed = sorted({dc.DomainRemoved.of(e).domain_id for e in events})
    for table in ("classifier_verdicts", "classifier_observations"):
        await conn.execute(f"DELETE FROM {table} WHERE domain_id = ANY(%b::uuid[])", (removed,))


REMOVALS = Projection(
    name="classifier.removals",
    event_types=[dc.DOMAIN_REMOVED],
    handle_batch=_forget,
    subject=dc.STREAM.subject,
)
