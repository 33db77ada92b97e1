"""Checks that a running stack has applied every event exactly once (for failure tests)."""

from __future__ import annotations

import grpc

from certwatch.platform import db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import rebuild
from certwatch.services import MIGRATIONS, projections
from certwatch.v1 import ops_pb2 as ops
from certwatch.v1 import ops_pb2_grpc

# Projection -> its table, for the ones a rebuild compares with the live rows.
TABLES = {
    "inventory.domains": "inventory_domains",
    "classifier.details": "classifier_details",
    "classifier.status": "classifier_status",
    "notifier.alert_state": "notifier_alert_state",
    "hosting.observed_expiry": "hosting_observed_expiry",
    "vod.cert_facts": "vod_cert_facts",
}


async def lagging(targets: dict[str, str], metadata: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """Each service's projections and relay with events still to apply (name -> lag), as
    the services report them (`Ops.GetServiceStatus`); empty when all are current."""
    behind: dict[str, int] = {}
    for service, target in targets.items():
        async with grpc.aio.insecure_channel(target) as channel:
            status = await ops_pb2_grpc.OpsStub(channel).GetServiceStatus(
                ops.ServiceStatusRequest(), metadata=metadata, timeout=5
            )
        behind.update({f"{service}/{c.name}": c.lag for c in status.components if c.lag})
    return behind


async def assert_rebuilds_equal_live(database_url: str) -> None:
    """Every projection rebuilt from position 0 equals the live one: the live runners
    applied each event once (twice, or not at all, and the rows would differ)."""
    pool = await db.open_pool(database_url, migrate=MIGRATIONS)
    try:
        event_log = EventLog(pool)
        known = projections(event_log)
        for name, table in TABLES.items():
            async with pool.connection() as conn:
                live = await (await conn.execute(f"SELECT * FROM {table} ORDER BY 1".encode())).fetchall()
            assert live, name
            await rebuild(event_log, known[name])
            async with pool.connection() as conn:
                rebuilt = await (await conn.execute(f"SELECT * FROM {table} ORDER BY 1".encode())).fetchall()
            assert rebuilt == live, name
    finally:
        await pool.close()
