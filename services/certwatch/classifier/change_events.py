"""Chain and ownership events, only when what a domain serves changed.

The last observation per domain lives in `classifier_observations`, read (locked) and
written a batch at a time in the transaction that appends the events, so each probe is
compared once, in probe order; a redelivered probe decides the same events with the same
ids (derived from the observation's id).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from certwatch.classifier.observation import Observation, changes, new_certificates, observe
from certwatch.contracts import status as sc
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import NewEvent, stable_id
from certwatch.rules.facts import ProbeResult


async def load(conn: Conn, domain_ids: Collection[str]) -> dict[str, Observation]:
    """The last observations of these domains, locked for this transaction."""
    cur = await conn.execute(
        "SELECT domain_id::text, state FROM classifier_observations WHERE domain_id = ANY(%b::uuid[])"
        " ORDER BY domain_id FOR UPDATE",
        (list(domain_ids),),
    )
    return {row[0]: Observation.from_dict(row[1]) for row in await cur.fetchall()}


async def save(conn: Conn, observed: dict[str, tuple[datetime, Observation | None]]) -> None:
    """Write what changed in a page: new states, and removals (None)."""
    gone = [d for d, (_, state) in observed.items() if state is None]
    kept = {d: v for d, v in observed.items() if v[1] is not None}
    if gone:
        await conn.execute("DELETE FROM classifier_observations WHERE domain_id = ANY(%b::uuid[])", (gone,))
    if kept:
        await conn.execute(
            "INSERT INTO classifier_observations (domain_id, observed_at, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::timestamptz[], %b::jsonb[])"
            " ON CONFLICT (domain_id) DO UPDATE SET observed_at = excluded.observed_at,"
            " state = excluded.state",
            (list(kept), [at for at, _ in kept.values()],
             [Jsonb(state.to_dict()) for _, state in kept.values() if state is not None]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Origin:
    """The probe events are derived from: their ids and metadata come from it."""

    source_id: str  # the observation's id (a UUID)
    domain_id: str
    account_id: str
    metadata: dict[str, Any]

    def event(self, kind: str, data: dict[str, Any]) -> NewEvent:
        return NewEvent(
            kind, data, event_id=stable_id(kind, uuid.UUID(self.source_id)), metadata=self.metadata
        )


def decide(
    previous: Observation | None, probe: Origin, result: ProbeResult
) -> tuple[Observation | None, list[NewEvent]]:
    """The domain's new observation (None: unchanged) and the `CertificateChainObserved` /
    `OwnershipChanged` events this probe warrants. Pure: the caller loads and saves.

    A chain event carries the full facts only of certificates the domain did not serve at
    the last observation; the rest are referenced by fingerprint, already in the log.
    """
    current = observe(result, previous)
    if current is None or current == previous:
        return None, []
    base = {"domain_id": probe.domain_id, "account_id": probe.account_id,
            "observed_at": result.started_at.isoformat()}  # fmt: skip
    found: list[NewEvent] = []
    if current.serving and (previous is None or current.serving != previous.serving):
        fresh = new_certificates(previous, current)
        certs = {c.sha256: c for e in result.endpoints for c in e.chain if c.sha256 in fresh}
        found.append(probe.event(sc.CERTIFICATE_CHAIN_OBSERVED, {
            **base,
            "serving": {ip: list(chain) for ip, chain in current.serving.items()},
            "certificates": [c.to_dict() for c in certs.values()],
        }))  # fmt: skip
    differences = changes(previous, current)
    if differences:
        found.append(probe.event(sc.OWNERSHIP_CHANGED, {
            **base, "kinds": [c.kind.value for c in differences],
            "changes": [c.to_dict() for c in differences],
        }))  # fmt: skip
    return current, found
