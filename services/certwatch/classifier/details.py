"""The Monitoring Details projection: what the report shows, one row per domain.

Built from compact events only (domain lifecycle, DomainClassified, CertificateChainObserved,
OwnershipChanged), never from ProbeCompleted, so probe payloads can shrink or expire
without touching the report. Like the inventory's domain list, a verdict counts only for
the current enable generation of an enabled domain.

A page is applied set-based: the page's rows in one query, the events folded into them in
Python (`fold`), then one statement per table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.contracts.listing import changed_row, domain_of, row_change
from certwatch.contracts.payload import Payload, decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.page_tables import PageTable, Row
from certwatch.platform.projection import Projection

DETAILS = PageTable("classifier_details", "domain_id", {
    "domain_id": "uuid", "account_id": "uuid", "host": "text", "port": "int4", "contact_ids": "text[]",
    "enabled": "bool", "generation": "int4", "period_start": "date", "service_ends_on": "date",
    "status": "text", "classified": "jsonb", "serving": "jsonb", "chain_observed_at": "timestamptz",
})  # fmt: skip
CERTIFICATES = PageTable("classifier_certificates", "sha256", {"sha256": "text", "facts": "jsonb"})
OWNERSHIP_CHANGES = PageTable("classifier_ownership_changes", "position", {
    "position": "int8", "transaction_id": "xid8", "domain_id": "uuid", "account_id": "uuid",
    "observed_at": "timestamptz", "kinds": "text[]", "changes": "jsonb",
})  # fmt: skip


@dataclass
class Folded:
    rows: dict[str, Row | None] = field(default_factory=dict)  # details rows touched (None: gone)
    certificates: dict[str, Row] = field(default_factory=dict)  # the first facts seen of each
    removed: set[str] = field(default_factory=set)  # domains whose stored ownership changes go
    ownership_changes: list[Row] = field(default_factory=list)  # recorded after any removal


def _first(current: object, value: object) -> object:
    return value if current is None else current


def fold(loaded: Mapping[str, Row], page: Sequence[tuple[RecordedEvent, Payload]]) -> Folded:
    """The page in log order, against the domains' stored rows."""
    out = Folded()
    for event, payload in page:
        domain_id = domain_of(payload)
        row = out.rows[domain_id] if domain_id in out.rows else loaded.get(domain_id)
        match payload:
            case sc.DomainClassified() as e:
                if row is not None and row["enabled"] and row["generation"] == e.generation:
                    start, ends = e.period()
                    row = {**row, "status": e.verdict.status.value, "classified": event.data,
                           "period_start": _first(row["period_start"], start),
                           "service_ends_on": _first(row["service_ends_on"], ends)}  # fmt: skip
            case sc.CertificateChainObserved() as e:
                for cert in e.certificates:
                    out.certificates.setdefault(cert["sha256"], {"sha256": cert["sha256"], "facts": cert})
                if row is not None:
                    row = {**row, "serving": event.data["serving"], "chain_observed_at": e.observed_at}
            case sc.OwnershipChanged() as e:
                out.ownership_changes.append({
                    "position": event.position, "transaction_id": event.transaction_id, "domain_id": domain_id,
                    "account_id": e.account_id, "observed_at": e.observed_at, "kinds": list(e.kinds),
                    "changes": event.data["changes"],
                })  # fmt: skip
            case dc.DomainAdded() as e:
                if row is None:
                    row = {"domain_id": domain_id, "account_id": e.account_id, "host": e.host, "port": e.port,
                           "contact_ids": list(e.contact_ids), "enabled": False, "generation": 0,
                           "period_start": None, "service_ends_on": None, "status": "NOT_ENABLED",
                           "classified": None, "serving": None, "chain_observed_at": None}  # fmt: skip
            case _ if (change := row_change(payload)) is not None:
                row = changed_row(row, change)
                if change.removed:
                    out.removed.add(domain_id)
                    out.ownership_changes = [r for r in out.ownership_changes if r["domain_id"] != domain_id]
        out.rows[domain_id] = row
    return out


async def _apply(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    page = [(e, decode(e)) for e in events]  # a malformed event fails here, naming its field
    loaded = await DETAILS.load(conn, {domain_of(p) for _, p in page})
    folded = fold(loaded, page)
    await DETAILS.write(conn, loaded, folded.rows)
    await CERTIFICATES.insert(conn, list(folded.certificates.values()), on_conflict="nothing")
    await OWNERSHIP_CHANGES.delete(conn, folded.removed, column="domain_id")
    await OWNERSHIP_CHANGES.insert(conn, folded.ownership_changes)


DETAILS_VIEW = Projection(
    name="classifier.details",
    event_types=[*dc.DOMAIN_EVENTS, sc.DOMAIN_CLASSIFIED, sc.CERTIFICATE_CHAIN_OBSERVED,
                 sc.OWNERSHIP_CHANGED],
    handle_batch=_apply,
    reset_sql=["DELETE FROM classifier_details", "DELETE FROM classifier_certificates",
               "DELETE FROM classifier_ownership_changes"],
)  # fmt: skip
