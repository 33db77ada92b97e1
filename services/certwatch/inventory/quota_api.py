"""Quota RPCs of the Inventory API: a thin adapter from gRPC messages to the use cases
(`quota_use_cases`) and back. Nothing here decides anything."""

from __future__ import annotations

from typing import Any

from certwatch.inventory import quota_use_cases as qu
from certwatch.platform import auth
from certwatch.platform.timestamps import timestamp
from certwatch.v1 import inventory_pb2 as pb


class QuotaHandlers:
    _quota: qu.QuotaUseCases

    async def GetQuota(self, request: pb.GetQuotaRequest, context: Any) -> pb.Quota:
        return _quota(await self._quota.get(auth.current(), request.ending_within_days))

    async def PurchasePackage(self, request: pb.PurchasePackageRequest, context: Any) -> pb.Quota:
        purchase = qu.Purchase(
            account_id=request.account_id, domain_count=request.domain_count, quantity=request.quantity,
            years=request.years,
        )  # fmt: skip
        return _quota(await self._quota.purchase(auth.current(), purchase))


def _quota(view: qu.QuotaView) -> pb.Quota:
    result = pb.Quota(account_id=view.account_id, purchased_units=view.purchased_units,
                      consumed_units=view.consumed_units, reserved_units=view.reserved_units,
                      remaining_units=view.remaining_units)  # fmt: skip
    for e in view.ending_soon:
        item = result.ending_soon.add(
            domain_id=e.domain_id, host=e.host, port=e.port, remaining_days=e.remaining_days
        )
        item.service_ends_at.CopyFrom(timestamp(e.service_ends_on))
    return result
