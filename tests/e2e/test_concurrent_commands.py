"""Commands racing on one stream: the loser decides again on the new state, never ABORTED."""

from __future__ import annotations

import asyncio

from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.stack import running_stack


async def test_enables_racing_on_the_quota_stream_all_succeed(settings: Settings) -> None:
    async with (
        running_stack(settings, ("inventory",), units=60) as stack,
        stack.channel("inventory") as channel,
    ):
        inventory = inventory_pb2_grpc.InventoryStub(channel)
        added = await inventory.AddDomains(
            pb.AddDomainsRequest(domains=",".join(f"race{i}.example.com" for i in range(24))),
            metadata=stack.metadata,
        )
        ids = [r.domain.id for r in added.results]
        batch = pb.AddDomainsRequest(
            domains=",".join(f"batch{i}.example.com" for i in range(30)), enable=True
        )
        results = await asyncio.gather(
            inventory.AddDomains(batch, metadata=stack.metadata),
            *(inventory.EnableMonitoring(pb.DomainRef(id=i), metadata=stack.metadata) for i in ids),
        )
        assert all(r.added and r.domain.monitoring_enabled for r in results[0].results)
        assert all(d.monitoring_enabled for d in results[1:])
        quota = await inventory.GetQuota(pb.GetQuotaRequest(), metadata=stack.metadata)
        # reserved at enable, consumed once each enable check passes (nothing listens here)
        assert (quota.consumed_units, quota.reserved_units, quota.remaining_units) == (0, 54, 6), quota


async def test_added_domains_are_answered_even_when_the_list_view_is_behind(settings: Settings) -> None:
    """A transaction older than the add holds the log's horizon back longer than the
    read-your-writes wait: the answer comes from the domains' own events, not INTERNAL."""
    import psycopg

    async with (
        running_stack(settings, ("inventory",), units=5) as stack,
        stack.channel("inventory") as channel,
    ):
        inventory = inventory_pb2_grpc.InventoryStub(channel)
        async with await psycopg.AsyncConnection.connect(settings.database_url) as old:
            await old.execute("SELECT pg_current_xact_id()")  # an open transaction with an id
            added = await inventory.AddDomains(
                pb.AddDomainsRequest(domains="late1.example.com,late2.example.com:8443", enable=True),
                metadata=stack.metadata, timeout=30,
            )  # fmt: skip
            await old.rollback()
        assert [(r.added, r.domain.host, r.domain.port, r.domain.status) for r in added.results] == [
            (True, "late1.example.com", 443, "ENABLING"), (True, "late2.example.com", 8443, "ENABLING"),
        ]  # fmt: skip
        assert all(r.domain.id and r.domain.monitoring_enabled for r in added.results)
