"""Turns each probe result into a verdict event, plus chain/ownership events on change.

Event ids are derived from the probe event's id, and the append commits with the processor's
checkpoint: a redelivered or replayed probe result appends nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from certwatch.classifier import chain_store, change_events
from certwatch.classifier.observation import Observation
from certwatch.contracts import domain as dc
from certwatch.contracts import probe as pc
from certwatch.contracts import status as sc
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import NewEvent, RecordedEvent, stable_id
from certwatch.platform.projection import Projection
from certwatch.rules.classify import classify, recommended_action
from certwatch.rules.facts import ProbeResult


def _per_address(result: ProbeResult, first_check: bool, now: datetime) -> list[dict[str, Any]]:
    """Each address classified on its own: the report's IP content names the stale node."""
    summaries = []
    for endpoint in result.endpoints:
        alone = classify(replace(result, endpoints=(endpoint,)), first_check=first_check, now=now)
        summaries.append({
            "ip": endpoint.ip, "status": alone.status.value,
            "primary_cause": alone.primary_cause.value if alone.primary_cause else None,
            "causes": [c.value for c in alone.causes], "phase": endpoint.phase,
            "error": endpoint.error, "tls_version": endpoint.tls_version,
            "cipher": endpoint.cipher,
            "leaf_sha256": endpoint.leaf.sha256 if endpoint.leaf else None,
            "ats": endpoint.ats.to_dict() if endpoint.ats else None,
        })  # fmt: skip
    return summaries


def verdict_event(probe: RecordedEvent, result: ProbeResult) -> NewEvent:
    data = probe.data
    verdict = classify(result, first_check=bool(data["first_check"]), now=result.started_at)
    action = recommended_action(verdict)
    return NewEvent(
        sc.DOMAIN_CLASSIFIED,
        {
            "domain_id": data["domain_id"], "account_id": data["account_id"],
            "generation": data["generation"], "first_check": data["first_check"],
            "verdict": verdict.to_dict(), "recommended_action": action,
            "endpoints": _per_address(result, bool(data["first_check"]), result.started_at),
        },
        event_id=stable_id(sc.DOMAIN_CLASSIFIED, probe.event_id),
        metadata={k: v for k, v in probe.metadata.items() if k in ("traceparent", "account_id")},
    )  # fmt: skip


def processor(event_log: EventLog) -> Projection:
    """Probe results → verdicts (+ chain and ownership events), a page per transaction:
    one chain-store round trip, one observations load and save, one `append_batch`."""

    async def handle_batch(conn: Conn, events: Sequence[RecordedEvent]) -> None:
        probes = [e for e in events if e.type == pc.PROBE_COMPLETED]
        expanded = await chain_store.expand(conn, [e.data["result"] for e in probes])
        results = {e.event_id: ProbeResult.from_dict(r) for e, r in zip(probes, expanded, strict=True)}
        observations: dict[str, Observation | None] = dict(
            await change_events.load(conn, {e.data["domain_id"] for e in events})
        )
        observed: dict[str, tuple[datetime, Observation | None]] = {}
        appends: dict[str, list[NewEvent]] = {}
        for event in events:
            domain_id = event.data["domain_id"]
            if event.type == dc.DOMAIN_REMOVED:  # re-adding the domain starts a fresh history
                observations[domain_id] = None
                observed[domain_id] = (event.recorded_at, None)
                continue
            result = results[event.event_id]
            state, found = change_events.decide(observations.get(domain_id), event, result)
            if state is not None:
                observations[domain_id] = state
                observed[domain_id] = (result.started_at, state)
            appends.setdefault(sc.stream_id(domain_id), []).extend([verdict_event(event, result), *found])
        await change_events.save(conn, observed)
        await event_log.append_batch([(s, evs, None) for s, evs in appends.items()], conn=conn)

    return Projection(
        name="classifier.processor", event_types=[pc.PROBE_COMPLETED, dc.DOMAIN_REMOVED],
        handle_batch=handle_batch,
        reset_sql=["DELETE FROM classifier_observations", "DELETE FROM classifier_chain_certs"],
        subject=pc.STREAM.subject,
    )  # fmt: skip
