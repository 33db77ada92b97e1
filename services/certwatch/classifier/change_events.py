"""Log compaction: chain and ownership events only when what a domain serves changed.

The last observation per domain lives in `classifier_observations`, read and written in the
processor's transaction (the one that also moves its checkpoint), so each probe result is
compared exactly once, in log order, and a replay decides the same events with the same ids.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from certwatch.classifier import events as cev
from certwatch.classifier.observation import Observation, changes, new_certificates, observe
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import NewEvent, RecordedEvent, stable_id
from certwatch.prober.facts import ProbeResult


async def _load(conn: Conn, domain_id: str) -> Observation | None:
    cur = await conn.execute(
        "SELECT state FROM classifier_observations WHERE domain_id = %s FOR UPDATE", (domain_id,)
    )
    row = await cur.fetchone()
    return Observation.from_dict(row[0]) if row else None


async def _save(conn: Conn, domain_id: str, observed_at: datetime, state: Observation) -> None:
    await conn.execute(
        "INSERT INTO classifier_observations (domain_id, observed_at, state) VALUES (%s, %s, %s)"
        " ON CONFLICT (domain_id) DO UPDATE SET observed_at = excluded.observed_at,"
        " state = excluded.state",
        (domain_id, observed_at, Jsonb(state.to_dict())),
    )


async def forget(conn: Conn, domain_id: str) -> None:
    """A removed domain's observation goes; re-adding it starts a fresh history."""
    await conn.execute("DELETE FROM classifier_observations WHERE domain_id = %s", (domain_id,))


def _event(kind: str, probe: RecordedEvent, data: dict[str, object]) -> NewEvent:
    meta = {k: v for k, v in probe.metadata.items() if k in ("traceparent", "account_id")}
    return NewEvent(kind, data, event_id=stable_id(kind, probe.event_id), metadata=meta)


async def change_events(conn: Conn, probe: RecordedEvent, result: ProbeResult) -> list[NewEvent]:
    """`CertificateChainObserved` / `OwnershipChanged` for this probe, if anything changed.

    A chain event carries the full facts only of certificates the domain did not serve at
    the last observation; the rest are referenced by fingerprint, already in the log.
    """
    domain_id = probe.data["domain_id"]
    previous = await _load(conn, domain_id)
    current = observe(result, previous)
    if current is None or current == previous:
        return []
    await _save(conn, domain_id, result.started_at, current)
    base = {"domain_id": domain_id, "account_id": probe.data["account_id"],
            "observed_at": result.started_at.isoformat()}  # fmt: skip
    found: list[NewEvent] = []
    if current.serving and (previous is None or current.serving != previous.serving):
        fresh = new_certificates(previous, current)
        certs = {c.sha256: c for e in result.endpoints for c in e.chain if c.sha256 in fresh}
        found.append(_event(cev.CERTIFICATE_CHAIN_OBSERVED, probe, {
            **base,
            "serving": {ip: list(chain) for ip, chain in current.serving.items()},
            "certificates": [c.to_dict() for c in certs.values()],
        }))  # fmt: skip
    differences = changes(previous, current)
    if differences:
        found.append(_event(cev.OWNERSHIP_CHANGED, probe, {
            **base, "kinds": [c.kind.value for c in differences],
            "changes": [c.to_dict() for c in differences],
        }))  # fmt: skip
    return found
