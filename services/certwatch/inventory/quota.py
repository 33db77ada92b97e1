"""Monitoring quota arithmetic: units bought, units consumed, and each domain's service period.

Pure functions over dates and integers, no clock and no I/O: callers pass ``today`` so the
rules can be tested on any day, leap years included.

The product's rules, as encoded here:

* A package purchase yields ``domain_count x quantity x years`` units; one unit is
  :data:`DAYS_PER_UNIT` (365) monitoring days for one domain.
* The countdown starts the first time monitoring is enabled and counts that day, so a
  domain first enabled on 2022-06-01 is served through 2023-05-31 (the product's own
  example). Exactly 365 days are served in leap years too: 2023-06-01 ends on 2024-05-30.
* The clock keeps running while monitoring is disabled, and nothing is refunded once a
  domain was enabled; re-enabling within the period therefore consumes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

from certwatch.inventory.validation import ValidationError

__all__ = [
    "DAYS_PER_UNIT",
    "MAX_PACKAGE_DOMAINS",
    "MAX_PACKAGE_QUANTITY",
    "MAX_PACKAGE_YEARS",
    "EnableOutcome",
    "QuotaExhausted",
    "QuotaState",
    "enable",
    "ending_soon",
    "is_expired",
    "purchase_units",
    "remaining_days",
    "service_end",
]

DAYS_PER_UNIT = 365
MAX_PACKAGE_DOMAINS = 10_000
MAX_PACKAGE_QUANTITY = 1_000
MAX_PACKAGE_YEARS = 5

K = TypeVar("K")


class QuotaExhausted(Exception):
    """Enabling needs more units than remain; maps to gRPC RESOURCE_EXHAUSTED / QuotaFailure."""

    def __init__(self, *, purchased: int, consumed: int, requested: int) -> None:
        self.purchased = purchased
        self.consumed = consumed
        self.requested = requested
        super().__init__(
            f"monitoring quota exhausted: {consumed} of {purchased} units used, {requested}"
            f" more needed; buy a package (one unit monitors one domain for {DAYS_PER_UNIT}"
            " days). Disabling a domain does not return its unit"
        )

    @property
    def remaining(self) -> int:
        return self.purchased - self.consumed


@dataclass(frozen=True, slots=True)
class QuotaState:
    """Units bought and units spent by one account; transitions return new states."""

    purchased_units: int = 0
    consumed_units: int = 0

    def __post_init__(self) -> None:
        if self.purchased_units < 0 or self.consumed_units < 0:
            raise ValueError("unit counts cannot be negative")
        if self.consumed_units > self.purchased_units:
            raise ValueError("cannot have consumed more units than were purchased")

    @property
    def remaining_units(self) -> int:
        return self.purchased_units - self.consumed_units

    def purchase(self, units: int) -> QuotaState:
        """Add bought units (see :func:`purchase_units`)."""
        if units < 1:
            raise ValueError("a purchase adds at least one unit")
        return QuotaState(self.purchased_units + units, self.consumed_units)

    def consume(self, units: int = 1) -> QuotaState:
        """Spend units, or raise :class:`QuotaExhausted` leaving this state untouched."""
        if units < 1:
            raise ValueError("consume at least one unit")
        if units > self.remaining_units:
            raise QuotaExhausted(
                purchased=self.purchased_units, consumed=self.consumed_units, requested=units
            )
        return QuotaState(self.purchased_units, self.consumed_units + units)


@dataclass(frozen=True, slots=True)
class EnableOutcome:
    """What enabling a domain did to the quota and to the domain's service period.

    ``period_start`` is the date the current 365-day period started (the first enable, or
    the renewal); the caller stores it as the domain's ``first_enabled``.
    """

    quota: QuotaState
    period_start: date
    consumed_unit: bool


def purchase_units(domain_count: int, quantity: int = 1, years: int = 1) -> int:
    """Units bought by one order: each package covers ``domain_count`` domains per year."""
    for name, value, bound in (
        ("domain_count", domain_count, MAX_PACKAGE_DOMAINS),
        ("quantity", quantity, MAX_PACKAGE_QUANTITY),
        ("years", years, MAX_PACKAGE_YEARS),
    ):
        if isinstance(value, bool) or not 1 <= value <= bound:
            raise ValidationError(name, "out_of_range", f"{name} must be a whole number from 1 to {bound}")
    return domain_count * quantity * years


def service_end(first_enabled: date) -> date:
    """Last monitored day: 365 days counting the first, so first + 364 (leap days included)."""
    return first_enabled + timedelta(days=DAYS_PER_UNIT - 1)


def remaining_days(first_enabled: date, today: date) -> int:
    """Days left including today: 365 on the first day, 1 on the last, 0 afterwards.

    A ``today`` before ``first_enabled`` (clock skew between services) reports the full 365
    rather than more, because a period never holds more than one unit of days.
    """
    left = (service_end(first_enabled) - today).days + 1
    return max(0, min(DAYS_PER_UNIT, left))


def is_expired(first_enabled: date, today: date) -> bool:
    """True from the day after :func:`service_end`; disabling does not pause the clock."""
    return today > service_end(first_enabled)


def enable(quota: QuotaState, first_enabled: date | None, today: date) -> EnableOutcome:
    """Enable monitoring for one domain, consuming a unit only when a new period starts.

    Never enabled: consume a unit, the period starts today. Enabled before and still within
    its period (a re-enable after a disable): consume nothing, the period is unchanged,
    since units are not refunded on disable. Period over: enabling renews, consuming a unit
    and starting a new period today; this is how multi-year purchases get used.
    Raises :class:`QuotaExhausted` when a unit is needed and none remain.
    """
    if first_enabled is not None and not is_expired(first_enabled, today):
        return EnableOutcome(quota, first_enabled, consumed_unit=False)
    return EnableOutcome(quota.consume(), today, consumed_unit=True)


def ending_soon(domains: Mapping[K, date | None], today: date, within_days: int) -> list[tuple[K, int]]:
    """Domains whose service period ends within ``within_days`` days (today included).

    Takes ``{key: first_enabled}`` (``None`` = never enabled, so nothing is ending) and
    returns ``(key, remaining_days)`` pairs, soonest first, ties in input order. Expired
    domains are excluded: they have ended, which is a different message to the user.
    """
    if not 0 <= within_days <= DAYS_PER_UNIT:
        raise ValueError(f"within_days must be from 0 to {DAYS_PER_UNIT}")
    found = [
        (key, left)
        for key, first_enabled in domains.items()
        if first_enabled is not None and 0 < (left := remaining_days(first_enabled, today)) <= within_days
    ]
    return sorted(found, key=lambda pair: pair[1])
