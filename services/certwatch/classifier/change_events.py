"""Log compaction: chain and ownership events only when what a domain serves changed.

The last observation per domain lives in `classifier_observations`, read and written a page
at a time in the processor's transaction (the one that also moves its checkpoint), so each
probe result is compared exactly once, in log order, and a replay decides the same events
with the same ids.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from psycopg.types.json import Jsonb

from certwatch.classifier.observation import Observation, changes, new_certificates, observe
from certwatch.contracts import status as sc
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import NewEvent, RecordedEvent, stable_id
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


def _event(kind: str, probe: RecordedEvent, data: dict[str, object]) -> NewEvent:
    meta = {k: v for k, v in probe.metadata.items() if k in ("traceparent", "account_id")}
    return NewEvent(kind, data, event_id=stable_id(kind, probe.event_id), metadata=meta)


def decide(
    previous: Observation | None, probe: RecordedEvent, result: ProbeResult
) -> tuple[Observation | None, list[NewEvent]]:
    """The domain's new observation (None: unchanged) and the `CertificateChainObserved` /
    `OwnershipChanged` events this probe warrants. Pure: the caller loads and saves.

    A chain event carries the full facts only of certificates the domain did not serve at
    the last observation; the rest are referenced by fingerprint, already in the log.
    """
    current = observe(result, previous)
    if current is None or current == previous:
        return None, []
    base = {"domain_id": probe.data["domain_id"], "account_id": probe.data["account_id"],
            "observed_at": result.started_at.isoformat()}  # fmt: skip
    found: list[NewEvent] = []
    if current.serving and (previous is None or current.serving != previous.serving):
        fresh = new_certificates(previous, current)
        certs = {c.sha256: c for e in result.endpoints for c in e.chain if c.sha256 in fresh}
        found.append(_event(sc.CERTIFICATE_CHAIN_OBSERVED, probe, {
            **base,
            "serving": {ip: list(chain) for ip, chain in current.serving.items()},
            "certificates": [c.to_dict() for c in certs.values()],
        }))  # fmt: skip
    differences = changes(previous, current)
    if differences:
        found.append(_event(sc.OWNERSHIP_CHANGED, probe, {
            **base, "kinds": [c.kind.value for c in differences],
            "changes": [c.to_dict() for c in differences],
        }))  # fmt: skip
    return current, found
