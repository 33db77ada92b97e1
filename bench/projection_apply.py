"""Projections applying pages set-based vs one statement per event, on the same log.

Run alone: `.venv/bin/python -m bench.projection_apply` (from the repo root; imports tests.support).

The log holds what enabling DOMAINS domains leaves, in appends of 500 as AddDomains makes
them: DomainAdded + MonitoringEnabled, then the first verdict (DomainClassified, first
check), MonitoringStarted, a chain (CertificateChainObserved), and VERDICTS more verdicts
per domain. Each projection is rebuilt from that log (`projection.rebuild`: every event
replayed in pages of the projection's own size) with its set-based page handler and,
alternately in the same run, with the per-event handlers it replaced
(tests/support/per_event_views.py): the reference. Both end with the same rows
(tests/integration/test_page_projections.py).
"""

from __future__ import annotations

import time
import uuid

from bench._common import Row, bounded, cli, fresh_servers, save
from certwatch.classifier.details import DETAILS_VIEW
from certwatch.classifier.status_view import STATUS_VIEW
from certwatch.inventory.views import DOMAIN_VIEW
from certwatch.platform import db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import Projection, rebuild
from certwatch.prober.schedule import SCHEDULE
from certwatch.services import MIGRATIONS
from tests.support import per_event_views as reference
from tests.support.domain_events import Domain, Event

BENCH = "projection_apply"
DOMAINS = 2_000
VERDICTS = 3
ROUNDS = 2
PAIRS = (
    (DOMAIN_VIEW, reference.DOMAINS), (DETAILS_VIEW, reference.DETAILS), (STATUS_VIEW, reference.STATUS),
    (SCHEDULE, reference.SCHEDULE_PER_EVENT),
)  # fmt: skip


def _appends(domains: list[Domain]) -> list[list[Event]]:
    """The log, one list per transaction (500 domains each, as AddDomains batches)."""
    out: list[list[Event]] = []
    for start in range(0, len(domains), 500):
        chunk = domains[start : start + 500]
        out.append([e for d in chunk for e in (d.added(), d.enabled())])
        out.append([d.classified("SECURE", first_check=True) for d in chunk])
        out.append(
            [
                e
                for d in chunk
                for e in (d.started(), d.chain({"192.0.2.1": (d.domain_id, "int")}, d.domain_id))
            ]
        )
    for n in range(VERDICTS):
        for start in range(0, len(domains), 500):
            out.append([d.classified("SECURE", minute=10 + n) for d in domains[start : start + 500]])
    return out


async def _rebuilt(log: EventLog, projection: Projection) -> tuple[int, float]:
    t0 = time.perf_counter()
    async with bounded(300, f"rebuild {projection.name}"):
        count = await rebuild(log, projection)
    return count, time.perf_counter() - t0


async def run() -> list[Row]:
    with fresh_servers(BENCH) as (pg, _nats):
        pool = await db.open_pool(pg.url, min_size=2, max_size=4, migrate=MIGRATIONS)
        try:
            log = EventLog(pool)
            account = str(uuid.uuid4())
            domains = [Domain(str(uuid.uuid4()), account, f"d{i}.example.test") for i in range(DOMAINS)]
            for events in _appends(domains):
                by_stream: dict[str, list[NewEvent]] = {}
                for stream, event in events:
                    by_stream.setdefault(stream, []).append(event)
                await log.append_batch([(s, evs, None) for s, evs in by_stream.items()])
            async with pool.connection() as conn:
                await conn.execute("ANALYZE events")
            rows: list[Row] = []
            figures = {}
            for batch, per_event in PAIRS:
                best = {"batch": 0.0, "per_event": 0.0}
                counts = set()
                for _ in range(ROUNDS):  # alternated, best of ROUNDS each
                    for side, projection in (("per_event", per_event), ("batch", batch)):
                        count, took = await _rebuilt(log, projection)
                        counts.add(count)
                        best[side] = max(best[side], count / took)
                if len(counts) != 1:
                    raise RuntimeError(f"{batch.name}: replays applied {counts} events")
                figures[batch.name] = {**best, "events": counts.pop()}
                rows.append(Row(
                    BENCH, f"{batch.name}: replay, set-based pages of {batch.page}", best["batch"], "events/s",
                    "the per-event handlers it replaced", best["per_event"],
                    note=f"{figures[batch.name]['events']:,} events",
                ))  # fmt: skip
        finally:
            await pool.close()
    save(BENCH, rows, {"domains": DOMAINS, "verdicts_per_domain": VERDICTS + 1, "figures": figures})
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
