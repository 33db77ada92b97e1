"""The inventory's domain list: a projection of domain events and the classifier's verdicts.

Every command waits for it (read-your-writes), so it applies a page set-based: the page's
rows in one query, the events folded into them in Python (`fold`), the changed rows
written back in one upsert (and one delete).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from certwatch.contracts import domain as dc
from certwatch.contracts.listing import changed_row, domain_of, row_change
from certwatch.contracts.payload import Payload, decode
from certwatch.contracts.status import DOMAIN_CLASSIFIED, DomainClassified
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.page_tables import PageTable, Row
from certwatch.platform.projection import Projection
from certwatch.rules.targets import unicode_hostname

TABLE = PageTable("inventory_domains", "domain_id", {
    "domain_id": "uuid", "account_id": "uuid", "host": "text", "host_unicode": "text", "port": "int4",
    "enabled": "bool", "generation": "int4", "status": "text", "primary_cause": "text", "causes": "text[]",
    "recommended_action": "text", "brand": "text", "valid_from": "timestamptz", "valid_to": "timestamptz",
    "days_left": "int4", "contact_ids": "text[]", "added_at": "timestamptz", "first_enabled_at": "timestamptz",
    "period_start": "date", "service_ends_on": "date", "last_checked_at": "timestamptz",
})  # fmt: skip


def step(row: Row | None, payload: Payload) -> Row | None:
    """One event applied to the domain's row (None: no row)."""
    if isinstance(payload, dc.DomainAdded):
        if row is not None:
            return row
        return {
            "domain_id": payload.domain_id, "account_id": payload.account_id, "host": payload.host,
            "host_unicode": unicode_hostname(payload.host), "port": payload.port, "enabled": False,
            "generation": 0, "status": "NOT_ENABLED", "primary_cause": None, "causes": [],
            "recommended_action": None, "brand": None, "valid_from": None, "valid_to": None,
            "days_left": None, "contact_ids": list(payload.contact_ids), "added_at": payload.added_at,
            "first_enabled_at": None, "period_start": None, "service_ends_on": None, "last_checked_at": None,
        }  # fmt: skip
    if isinstance(payload, DomainClassified):
        # Only a verdict for the current enable generation of an enabled domain counts.
        if row is None or not row["enabled"] or row["generation"] != payload.generation:
            return row
        verdict = payload.verdict
        period_start, service_ends_on = payload.period()
        return {
            **row, "status": verdict.status.value,
            "primary_cause": verdict.primary_cause.value if verdict.primary_cause else None,
            "causes": [c.value for c in verdict.causes], "recommended_action": payload.recommended_action,
            "brand": verdict.brand, "valid_from": verdict.valid_from, "valid_to": verdict.valid_to,
            "days_left": verdict.days_left, "last_checked_at": verdict.checked_at,
            "period_start": _first(row["period_start"], period_start),
            "service_ends_on": _first(row["service_ends_on"], service_ends_on),
        }  # fmt: skip
    change = row_change(payload)
    if change is None:
        return row
    changed = changed_row(row, change)
    if changed is not None and changed["status"] == "ENABLING":
        # An enable check (an enable, or the retry of a failed one after an edit or a
        # recheck) clears the verdict before it: its causes are not the new check's, and its
        # time is not the new check's either (a row with none is never stale: not checked yet).
        changed.update(primary_cause=None, causes=[], recommended_action=None, last_checked_at=None)
    if changed is not None and isinstance(payload, dc.MonitoringEnabled):  # the first enable dates it
        changed["first_enabled_at"] = _first(changed["first_enabled_at"], payload.enabled_at)
    return changed


def _first(current: object, value: object) -> object:
    return value if current is None else current


def fold(loaded: Mapping[str, Row], payloads: Sequence[Payload]) -> dict[str, Row | None]:
    """Each touched domain's row after the page, in log order (None: removed or absent)."""
    rows: dict[str, Row | None] = {}
    for payload in payloads:
        domain_id = domain_of(payload)
        rows[domain_id] = step(rows[domain_id] if domain_id in rows else loaded.get(domain_id), payload)
    return rows


async def _apply(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    payloads = [decode(e) for e in events]  # a malformed event fails here, naming its field
    loaded = await TABLE.load(conn, {domain_of(p) for p in payloads})
    await TABLE.write(conn, loaded, fold(loaded, payloads))


DOMAIN_VIEW = Projection(
    name="inventory.domains",
    event_types=[*dc.DOMAIN_EVENTS, DOMAIN_CLASSIFIED],
    handle_batch=_apply,
    reset_sql=["DELETE FROM inventory_domains"],
    page=200,  # every command waits for it (read-your-writes): short pages, short waits
)
