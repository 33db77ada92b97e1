"""What each monitored host serves, for the VOD certificate API: a projection of the domain
lifecycle and the classifier's `CertificateChainObserved` events (contracts only, never
another service's tables).

A page is written with one statement per kind of change, not one per event (a statement an
event was most of this service's CPU while 10,000 domains were enabled). Within a segment of
the page that is the page applied in order, because the changes commute: certificates are
only ever inserted; an edit sets host and port, a chain what it serves (the segment's last
chain of a domain stands); additions go first and removals last, and a segment ends before
a domain it touched is added (again) or changed after its removal. In the log a domain's
`DomainAdded` comes first and its removal last, so a page is one segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.contracts.payload import decode
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


@dataclass
class _Segment:
    """Consecutive events whose changes can be written kind by kind (see the module's note)."""

    added: dict[str, dc.DomainAdded] = field(default_factory=dict)
    edits: list[dc.DomainEdited] = field(default_factory=list)
    certificates: dict[str, bytes] = field(default_factory=dict)
    serving: dict[str, tuple[bytes, datetime]] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    def touches(self, domain_id: str) -> bool:
        return (domain_id in self.added or domain_id in self.serving or domain_id in self.removed
                or any(e.domain_id == domain_id for e in self.edits))  # fmt: skip

    def admits(self, event: RecordedEvent) -> bool:
        """Whether the event can join without changing the outcome: a domain added (again) that
        the segment touched already, or any change after its removal, starts a new one."""
        domain_id = str(event.data.get("domain_id", ""))
        if event.type == dc.DOMAIN_ADDED:
            return not self.touches(domain_id)
        return domain_id not in self.removed

    def take(self, event: RecordedEvent) -> None:
        match decode(event):
            case dc.DomainAdded() as e:
                self.added[e.domain_id] = e
            case dc.DomainEdited() as e:
                self.edits.append(e)
            case dc.DomainRemoved() as e:
                self.removed.add(e.domain_id)
            case sc.CertificateChainObserved() as e:
                for cert in e.certificates:  # most chains repeat ones the page holds: encode a new one only
                    if cert["sha256"] not in self.certificates:
                        self.certificates[cert["sha256"]] = orjson.dumps(cert)
                self.serving[e.domain_id] = (orjson.dumps(event.data["serving"]), e.observed_at)

    async def write(self, conn: Conn) -> None:
        if self.certificates:
            await conn.execute(
                "INSERT INTO vod_certificates (sha256, facts) SELECT s, f::jsonb FROM unnest(%s::text[], %s::text[])"
                " AS u(s, f) ON CONFLICT (sha256) DO NOTHING",
                (list(self.certificates), [f.decode() for f in self.certificates.values()]),
            )
        if self.added:
            rows = list(self.added.values())
            await conn.execute(
                "INSERT INTO vod_observed_hosts (domain_id, account_id, host, port) SELECT *"
                " FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::int[]) ON CONFLICT (domain_id) DO NOTHING",
                ([e.domain_id for e in rows], [e.account_id for e in rows], [e.host for e in rows],
                 [e.port for e in rows]),
            )  # fmt: skip
        for edit in self.edits:  # rare: one statement each, in order
            await conn.execute(
                "UPDATE vod_observed_hosts SET host = coalesce(%s, host), port = %s WHERE domain_id = %s",
                (edit.host, edit.port, edit.domain_id),
            )
        if self.serving:
            await conn.execute(
                "UPDATE vod_observed_hosts h SET serving = u.s::jsonb, observed_at = u.at"
                " FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[]) AS u(id, s, at) WHERE h.domain_id = u.id",
                (list(self.serving), [s.decode() for s, _ in self.serving.values()],
                 [at for _, at in self.serving.values()]),
            )  # fmt: skip
        if self.removed:
            await conn.execute(
                "DELETE FROM vod_observed_hosts WHERE domain_id = ANY(%s::uuid[])", (list(self.removed),)
            )


async def _apply_page(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    segment = _Segment()
    for event in events:
        if not segment.admits(event):
            await segment.write(conn)
            segment = _Segment()
        segment.take(event)
    await segment.write(conn)


OBSERVED_HOSTS = Projection(
    name="vod.observed_hosts",
    event_types=[dc.DOMAIN_ADDED, dc.DOMAIN_EDITED, dc.DOMAIN_REMOVED, sc.CERTIFICATE_CHAIN_OBSERVED],
    handle_batch=_apply_page,
    reset_sql=["DELETE FROM vod_observed_hosts", "DELETE FROM vod_certificates"],
)
