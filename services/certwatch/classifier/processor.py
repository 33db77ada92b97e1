"""Turns each probe result into a verdict event, plus chain/ownership events on change.

Event ids are derived from the probe event's id, and the append commits with the processor's
checkpoint: a redelivered or replayed probe result appends nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

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

verdicts_log = logging.getLogger("certwatch.classifier.verdicts")


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


async def _apply_status(conn: Conn, event: RecordedEvent, classified: sc.DomainClassified) -> None:
    verdict = classified.verdict
    row = (classified.domain_id, classified.account_id, verdict.status, verdict.primary_cause,
           list(verdict.causes), verdict.checked_at)  # fmt: skip
    await conn.execute(
        "INSERT INTO classifier_status (domain_id, account_id, status, primary_cause, causes,"
        " checked_at, generation, verdict) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (domain_id) DO UPDATE SET status = excluded.status,"
        " primary_cause = excluded.primary_cause, causes = excluded.causes,"
        " checked_at = excluded.checked_at, generation = excluded.generation,"
        " verdict = excluded.verdict",
        (*row, classified.generation, _json(event.data["verdict"])),
    )
    await conn.execute(
        "INSERT INTO classifier_status_history (domain_id, account_id, status, primary_cause,"
        " causes, checked_at, position, transaction_id, verdict)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::text::xid8, %s)",
        (*row, event.position, str(event.transaction_id), _json(event.data["verdict"])),
    )


async def _apply_statuses(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    """The status view, and one log line per verdict change (status or primary cause): the
    page's previous statuses come in one query, so the log costs a round trip per page."""
    page = [(e, sc.DomainClassified.of(e)) for e in events]
    cur = await conn.execute(
        "SELECT domain_id::text, status, primary_cause FROM classifier_status WHERE domain_id = ANY(%b::uuid[])",
        (list({c.domain_id for _, c in page}),),
    )
    last: dict[str, tuple[str | None, str | None]] = {
        row[0]: (row[1], row[2]) for row in await cur.fetchall()
    }
    for event, classified in page:
        await _apply_status(conn, event, classified)
        domain_id, verdict = classified.domain_id, classified.verdict
        before = last.get(domain_id, (None, None))
        now = (verdict.status.value, verdict.primary_cause.value if verdict.primary_cause else None)
        if now != before:
            verdicts_log.info(
                "domain %s verdict %s -> %s (%s)", domain_id, before[0] or "none", now[0], now[1] or "no cause",
                extra={"domain_id": domain_id, "account_id": classified.account_id, "previous": before[0],
                       "status": now[0], "primary_cause": now[1], "position": event.position},
            )  # fmt: skip
        last[domain_id] = now


def _json(value: object) -> Jsonb:
    return Jsonb(value)


STATUS_VIEW = Projection(
    name="classifier.status",
    event_types=[sc.DOMAIN_CLASSIFIED],
    handle_batch=_apply_statuses,
    reset_sql=["DELETE FROM classifier_status", "DELETE FROM classifier_status_history"],
    subject=sc.STREAM.subject,
)
