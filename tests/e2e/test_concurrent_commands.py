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
