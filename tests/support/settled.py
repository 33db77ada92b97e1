"""Checks that a running stack has applied every event exactly once (for failure tests)."""

from __future__ import annotations

from collections.abc import Collection

import grpc
import nats
import psycopg

from certwatch.contracts import status as sc
from certwatch.platform import bus as busmod
from certwatch.platform import db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import rebuild
from certwatch.services import HTTP_SERVICES, MIGRATIONS, projections
from certwatch.v1 import ops_pb2 as ops
from certwatch.v1 import ops_pb2_grpc
from tests.support.domain_load import statuses
from tests.support.stack import Stack, wait_for

# Projection -> its table, for the ones a rebuild compares with the live rows.
TABLES = {
    "inventory.domains": "inventory_domains",
    "classifier.details": "classifier_details",
    "classifier.status": "classifier_status",
    "hosting.observed_expiry": "hosting_observed_expiry",
    "vod.observed_hosts": "vod_observed_hosts",
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
            # Compared as sorted rows: `ORDER BY 1` leaves ties (one account's rows) in any order.
            live, rebuilt = sorted(live, key=repr), sorted(rebuilt, key=repr)
            only_live = [r for r in live if r not in rebuilt]
            only_rebuilt = [r for r in rebuilt if r not in live]
            assert rebuilt == live, (name, only_live[:3], only_rebuilt[:3], len(live), len(rebuilt))
    finally:
        await pool.close()


async def assert_settled(stack: Stack, hosts: Collection[str], *, timeout: float = 120.0) -> dict[str, str]:
    """Wait (bounded) until exactly `hosts` have a verdict and every service reports no lag;
    then each domain must have exactly one verdict event (hosts are checked once, hourly) and
    the event stream must hold each event of the log exactly once. Returns the statuses."""

    last: dict[str, str] = {}

    async def verdicts() -> dict[str, str] | None:
        last.clear()
        last.update(await statuses(stack))
        return last if len(last) == len(hosts) and "ENABLING" not in last.values() else None

    try:
        seen: dict[str, str] = await wait_for(verdicts, timeout=timeout, every=0.5)
    except AssertionError as exc:
        waiting = sorted(h for h in hosts if last.get(h, "ENABLING") == "ENABLING")
        behind = await lagging(_grpc_targets(stack), stack.metadata)
        raise AssertionError(
            f"{len(waiting)} of {len(hosts)} without a verdict after {timeout}s"
            f" (e.g. {waiting[:5]}); lagging: {behind}"
        ) from exc
    assert set(seen) == set(hosts)
    targets = _grpc_targets(stack)
    behind: dict[str, int] = {}

    async def current() -> bool:
        behind.clear()
        behind.update(await lagging(targets, stack.metadata))
        return not behind

    try:
        await wait_for(current, timeout=timeout, every=0.5)
    except AssertionError as exc:
        raise AssertionError(f"still behind after {timeout}s: {behind}") from exc
    async with await psycopg.AsyncConnection.connect(stack.settings.database_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM events")).fetchone()
        verdicts = await (await conn.execute(
            "SELECT count(*) FROM events WHERE event_type = %s", (sc.DOMAIN_CLASSIFIED,)
        )).fetchone()  # fmt: skip
    assert row is not None
    assert verdicts == (len(hosts),)  # one verdict a domain: the first check's, however often retried
    nc = await nats.connect(busmod.servers(stack.settings.nats_url), max_reconnect_attempts=2)
    try:
        stored = await nc.jetstream(timeout=10).stream_info(busmod.STREAM)
    finally:
        await nc.close()
    assert stored.state.messages == row[0]  # each event once on the bus: dedup held through retries
    return seen


def _grpc_targets(stack: Stack) -> dict[str, str]:
    """The services that answer `Ops` over gRPC (an HTTP service, the console, does not)."""
    return {n: f"127.0.0.1:{s.port}" for n, s in stack.services.items() if n not in HTTP_SERVICES}
