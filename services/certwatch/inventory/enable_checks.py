"""Concludes enable checks from the classifier's verdicts: the first verdict of an enable
check starts monitoring (the reserved unit is consumed, the 365 days start) or, when it is
`ENABLE_FAILED`, records that monitoring could not be enabled and releases the unit.

The decision is the aggregate's (`domain.conclude_enable_check`); this processor only feeds
it verdicts. Its appends commit with its checkpoint and their ids derive from the verdict's,
so a replay appends nothing twice; the domain stream's expected version makes a command
that raced it (a disable, a retry) win, and the page is then retried on the new state.
"""

from __future__ import annotations

from collections.abc import Sequence

from certwatch.contracts import domain as dc
from certwatch.contracts import quota as qc
from certwatch.contracts import status as sc
from certwatch.contracts.status import DOMAIN_CLASSIFIED, DomainClassified
from certwatch.inventory import domain as d
from certwatch.inventory import quota_stream
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import NewEvent, RecordedEvent, stable_id
from certwatch.platform.projection import Projection


def processor(event_log: EventLog) -> Projection:
    async def handle_batch(conn: Conn, events: Sequence[RecordedEvent]) -> None:
        # Only an enable check is probed as a first check; steady-state verdicts cost nothing.
        checks = [(e, DomainClassified.of(e)) for e in events if e.data.get("first_check")]
        states: dict[str, tuple[d.DomainState | None, int]] = {}
        domain_events: dict[str, list[NewEvent]] = {}
        quota_events: dict[str, list[NewEvent]] = {}
        streams = await event_log.read_streams(
            list(dict.fromkeys(dc.stream_id(c.domain_id) for _, c in checks)), conn=conn
        )
        for verdict_event, classified in checks:
            domain_id = classified.domain_id
            if domain_id not in states:
                recorded = streams[dc.stream_id(domain_id)]
                states[domain_id] = (d.fold([(e.type, e.data) for e in recorded]), len(recorded))
            state, version = states[domain_id]
            decided = d.conclude_enable_check(
                state, generation=classified.generation, status=classified.verdict.status,
                checked_at=classified.verdict.checked_at,
            )  # fmt: skip
            metadata = {k: v for k, v in verdict_event.metadata.items() if k in ("traceparent", "account_id")}
            for event_type, data in decided:
                new = NewEvent(
                    event_type, data, event_id=stable_id(event_type, verdict_event.event_id),
                    schema_version=d.schema_version(event_type), metadata=metadata,
                )  # fmt: skip
                if event_type in qc.QUOTA_EVENTS:
                    quota_events.setdefault(data["account_id"], []).append(new)
                else:
                    domain_events.setdefault(domain_id, []).append(new)
                    state = d.evolve(state, event_type, data)
            states[domain_id] = (state, version)
        for account_id in sorted(quota_events):  # a fixed order: no deadlock between pages
            await quota_stream.lock(conn, account_id)
        await event_log.append_batch(
            [(dc.stream_id(k), evs, states[k][1]) for k, evs in domain_events.items()]
            + [(qc.stream_id(k), evs, None) for k, evs in quota_events.items()],
            conn=conn,
        )

    return Projection(
        name="inventory.enable_checks", event_types=[DOMAIN_CLASSIFIED], handle_batch=handle_batch,
        subject=sc.STREAM.subject,
    )  # fmt: skip
