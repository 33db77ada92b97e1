"""The inventory's quota use cases, apart from any transport (see `domain_use_cases`): what
an account has left and what ends soon, and an admin's package purchase. Refusals are the
platform's errors, mapped once for every transport (`platform.error_codes`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from certwatch.contracts import quota as qc
from certwatch.inventory import quota_stream
from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument, NotFound
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.rules import quota
from certwatch.rules.targets import ValidationError

MAX_ENDING_WITHIN_DAYS = 365
DEFAULT_ENDING_WITHIN_DAYS = 30


def require_admin(principal: auth.Principal) -> auth.Principal:
    if not principal.is_admin:
        raise auth.PermissionDenied("this call needs an admin API key")
    return principal


def parse_account_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument([("account_id", "not an account id (a UUID)")]) from None


async def require_account(conn: Conn, account_id: uuid.UUID) -> None:
    cur = await conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"no account {account_id}")


@dataclass(frozen=True, slots=True)
class EndingSoon:
    """A domain whose paid year ends within the window asked for."""

    domain_id: str
    host: str
    port: int
    remaining_days: int
    service_ends_on: date


@dataclass(frozen=True, slots=True)
class QuotaView:
    account_id: str
    purchased_units: int
    consumed_units: int
    reserved_units: int
    remaining_units: int
    ending_soon: tuple[EndingSoon, ...]


@dataclass(frozen=True, slots=True)
class Purchase:
    """A package bought for `account_id`: `quantity` packages of `domain_count` domains
    for `years` years (0: one)."""

    account_id: str
    domain_count: int
    quantity: int = 1
    years: int = 1


class QuotaUseCases:
    def __init__(
        self, event_log: EventLog, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._log = event_log
        self._now = clock

    async def get(self, principal: auth.Principal, ending_within_days: int = 0) -> QuotaView:
        """The caller's own quota; `ending_within_days` 0 is the default window."""
        within = ending_within_days or DEFAULT_ENDING_WITHIN_DAYS
        if within > MAX_ENDING_WITHIN_DAYS:
            raise InvalidArgument([("ending_within_days", f"at most {MAX_ENDING_WITHIN_DAYS}")])
        return await self._view(principal.account_id, within)

    async def purchase(self, principal: auth.Principal, command: Purchase) -> QuotaView:
        """Admins only: credit the account (which must exist) with the package's units."""
        require_admin(principal)
        account_id = parse_account_id(command.account_id)
        quantity, years = command.quantity or 1, command.years or 1
        try:
            units = quota.purchase_units(command.domain_count, quantity, years)
        except ValidationError as exc:
            raise InvalidArgument(exc.field_descriptions()) from exc
        async with self._log.pool.connection() as conn:
            await require_account(conn, account_id)
        purchased = qc.QuotaPackagePurchased(
            account_id=str(account_id), units=units, domain_count=command.domain_count, quantity=quantity,
            years=years,
        )  # fmt: skip
        await self._log.append(
            qc.stream_id(account_id),
            [purchased.new_event(metadata={"account_id": str(account_id), "actor": principal.key_id})],
            expected_version=None,
        )
        return await self._view(account_id, DEFAULT_ENDING_WITHIN_DAYS)

    async def _view(self, account_id: uuid.UUID, within: int) -> QuotaView:
        today = self._now().date()
        async with self._log.pool.connection() as conn:
            state = await quota_stream.load(self._log, conn, account_id)
            cur = await conn.execute(
                "SELECT domain_id, host, port, period_start FROM inventory_domains"
                " WHERE account_id = %s AND period_start IS NOT NULL", (account_id,),
            )  # fmt: skip
            rows = {str(r[0]): r for r in await cur.fetchall()}
        ending = quota.ending_soon({k: r[3] for k, r in rows.items()}, today, within)
        return QuotaView(
            account_id=str(account_id), purchased_units=state.purchased_units, consumed_units=state.consumed_units,
            reserved_units=state.reserved_units, remaining_units=state.available_units,
            ending_soon=tuple(
                EndingSoon(domain_id, rows[domain_id][1], rows[domain_id][2], days,
                           quota.service_end(rows[domain_id][3]))
                for domain_id, days in ending
            ),
        )  # fmt: skip
