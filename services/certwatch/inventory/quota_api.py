"""Quota handlers of the Inventory API: what is left, what ends soon, and admin purchases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from certwatch.contracts import quota as qc
from certwatch.inventory import quota_stream
from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.timestamps import timestamp
from certwatch.rules import quota
from certwatch.rules.targets import ValidationError
from certwatch.v1 import inventory_pb2 as pb

MAX_ENDING_WITHIN_DAYS = 365


def require_admin() -> auth.Principal:
    principal = auth.current()
    if not principal.is_admin:
        raise auth.PermissionDenied("this call needs an admin API key")
    return principal


def parse_account_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument([("account_id", "not an account id (a UUID)")]) from None


class QuotaHandlers:
    _log: EventLog
    _now: Callable[[], datetime]

    async def GetQuota(self, request: pb.GetQuotaRequest, context: Any) -> pb.Quota:
        principal = auth.current()
        within = request.ending_within_days or 30
        if within > MAX_ENDING_WITHIN_DAYS:
            raise InvalidArgument([("ending_within_days", f"at most {MAX_ENDING_WITHIN_DAYS}")])
        return await self._quota(principal.account_id, within)

    async def _quota(self, account_id: uuid.UUID, within: int) -> pb.Quota:
        today = self._now().date()
        async with self._log.pool.connection() as conn:
            state = await quota_stream.load(self._log, conn, account_id)
            cur = await conn.execute(
                "SELECT domain_id, host, port, period_start FROM inventory_domains"
                " WHERE account_id = %s AND period_start IS NOT NULL", (account_id,),
            )  # fmt: skip
            rows = {str(r[0]): r for r in await cur.fetchall()}
        ending = quota.ending_soon({k: r[3] for k, r in rows.items()}, today, within)
        result = pb.Quota(account_id=str(account_id), purchased_units=state.purchased_units,
                          consumed_units=state.consumed_units, reserved_units=state.reserved_units,
                          remaining_units=state.available_units)  # fmt: skip
        for domain_id, days in ending:
            row = rows[domain_id]
            item = result.ending_soon.add(domain_id=domain_id, host=row[1], port=row[2], remaining_days=days)
            item.service_ends_at.CopyFrom(timestamp(quota.service_end(row[3])))
        return result

    async def PurchasePackage(self, request: pb.PurchasePackageRequest, context: Any) -> pb.Quota:
        principal = require_admin()
        account_id = parse_account_id(request.account_id)
        try:
            units = quota.purchase_units(request.domain_count, request.quantity or 1, request.years or 1)
        except ValidationError as exc:
            raise InvalidArgument(exc.field_descriptions()) from exc
        async with self._log.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,))
            if await cur.fetchone() is None:
                raise NotFound(f"no account {account_id}")
        await self._log.append(
            qc.stream_id(account_id),
            [NewEvent(qc.QUOTA_PURCHASED, {
                "account_id": str(account_id), "units": units, "domain_count": request.domain_count,
                "quantity": request.quantity or 1, "years": request.years or 1,
            }, metadata={"account_id": str(account_id), "actor": principal.key_id})],
            expected_version=None,
        )  # fmt: skip
        return await self._quota(account_id, 30)
