"""The hosting tables are a projection: rebuilt from the log, they equal the live rows.

Live rows are written by the runner-free path the services use (commands wait for the
projection after each append); the rebuild goes through the catalogue `certwatch admin
rebuild` uses, so the projection is registered there under its name.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from certwatch.contracts import hosting as hc
from certwatch.hosting import views
from certwatch.hosting.use_cases import HostingUseCases
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import rebuild
from certwatch.services import projections
from tests.support.hosting import Hosting
from tests.support.pki import TestPKI

TABLES = {
    "hosting_instances": "instance_id",
    "hosting_certificates": "certificate_id",
    "hosting_orders": "order_url",
}


async def _rows(event_log: EventLog) -> dict[str, list[tuple[Any, ...]]]:
    async with event_log.pool.connection() as conn:
        return {
            table: await (await conn.execute(f"SELECT * FROM {table} ORDER BY {key}")).fetchall()
            for table, key in TABLES.items()
        }


async def test_a_rebuild_of_the_hosting_views_equals_the_live_rows(h: Hosting, event_log: EventLog) -> None:
    _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
    first = instances[0].instance_id
    await h.use_cases.subscribe(h.account_id, 3, "test")  # never applied for
    name = f"v{uuid.uuid4().hex[:10]}.example.com"
    await h.use_cases.apply(h.account_id, first, [name], "ec256", "Co", "ops@example.com", "http-01", "t")
    await h.settle()
    await h.use_cases.renew_now(h.account_id, first, "t")
    await h.settle()
    issued = await h.use_cases.certificates(h.account_id)
    assert len(issued) == 2
    current = (await h.use_cases.lifecycle(h.account_id, first)).instance.current
    assert current is not None
    superseded = next(c for c in issued if c.id != current.certificate_id)
    await h.use_cases.delete_certificate(h.account_id, superseded.id, "t")
    with TestPKI() as p:
        uploads = HostingUseCases(event_log, h.vault, clock=h.clock, ca_file=p.ca_file)
        leaf = p.leaf("up.example.com", not_after=h.clock.now + timedelta(days=10))
        uploaded = await uploads.upload(h.account_id, leaf.pem, leaf.key_pem, p.intermediate.pem, "t")
    assert await h.orchestrator.announce_expiring_uploads() >= 1

    live = await _rows(event_log)
    mine = [r for r in live["hosting_certificates"] if str(r[1]) == h.account_id]
    assert {str(r[0]) for r in mine} == {c.id for c in issued if c.id != superseded.id} | {uploaded.id}
    assert all(r[-1] for r in mine if r[11])  # the upload's expiry is announced
    assert len([r for r in live["hosting_orders"] if str(r[1]) == first]) == 2

    projection = projections(event_log)[views.NAME]
    assert await rebuild(event_log, projection) > 0
    assert await _rows(event_log) == live
    # And the orchestrator still finds nothing due, as before the rebuild.
    assert await h.orchestrator.run_due() == 0
    events = await event_log.read_stream(hc.stream_id(first))
    assert sum(e.type == hc.OrderPlaced.TYPE for e in events) == 2
