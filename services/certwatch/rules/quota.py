"""Monitoring quota arithmetic: units bought, reserved and consumed, and each domain's period.

Pure functions over dates and integers, no clock and no I/O: callers pass ``today`` so the
rules can be tested on any day, leap years included.

The product's rules, as encoded here:

* A package purchase yields ``domain_count x quantity x years`` units; one unit is
  :data:`DAYS_PER_UNIT` (365) monitoring days for one domain.
* Enabling a domain that has no running period reserves a unit. The unit is consumed when
  monitoring actually starts (the enable check's verdict is not ``ENABLE_FAILED``), and
  released when the enable check fails: the seed says such monitoring "could not be
  enabled".
* The countdown starts the day monitoring starts and counts that day, so a domain started
  on 2022-06-01 is served through 2023-05-31 (the product's own example). Exactly 365 days
  are served in leap years too: 2023-06-01 ends on 2024-05-30.
* The clock keeps running while monitoring is disabled, and nothing is refunded once
  monitoring started; re-enabling within the period therefore needs no unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

from certwatch.rules.targets import ValidationError

__all__ = [
    "DAYS_PER_UNIT",
    "MAX_PACKAGE_DOMAINS",
    "MAX_PACKAGE_QUANTITY",
    "MAX_PACKAGE_YEARS",
    "QuotaExhausted",
    "QuotaState",
    "ending_soon",
    "is_expired",
    "needs_unit",
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
    """Enabling needs more units than are available; the API answers FAILED_PRECONDITION."""

    def __init__(self, *, purchased: int, consumed: int, reserved: int, requested: int) -> None:
        self.purchased = purchased
        self.consumed = consumed
        self.reserved = reserved
        self.requested = requested
        super().__init__(
            f"monitoring quota exhausted: of {purchased} units {consumed} are consumed and {reserved}"
            f" reserved by enable checks, {requested} more needed; buy a package (one unit monitors"
            f" one domain for {DAYS_PER_UNIT} days). A failed enable check returns its unit;"
            " disabling a domain whose monitoring started does not"
        )

    @property
    def available(self) -> int:
        return self.purchased - self.consumed - self.reserved


@dataclass(frozen=True, slots=True)
class QuotaState:
    """Units bought, held by pending enable checks, and spent, by one account.

    Transitions return new states; ``consumed + reserved`` never exceeds ``purchased``.
    """

    purchased_units: int = 0
    consumed_units: int = 0
    reserved_units: int = 0

    def __post_init__(self) -> None:
        if min(self.purchased_units, self.consumed_units, self.reserved_units) < 0:
            raise ValueError("unit counts cannot be negative")
        if self.consumed_units + self.reserved_units > self.purchased_units:
            raise ValueError("cannot have consumed and reserved more units than were purchased")

    @property
    def available_units(self) -> int:
        """Units a new enable may reserve."""
        return self.purchased_units - self.consumed_units - self.reserved_units

    def purchase(self, units: int) -> QuotaState:
        """Add bought units (see :func:`purchase_units`)."""
        if units < 1:
            raise ValueError("a purchase adds at least one unit")
        return QuotaState(self.purchased_units + units, self.consumed_units, self.reserved_units)

    def _check_available(self, units: int) -> None:
        if units < 1:
            raise ValueError("use at least one unit")
        if units > self.available_units:
            raise QuotaExhausted(purchased=self.purchased_units, consumed=self.consumed_units,
                                 reserved=self.reserved_units, requested=units)  # fmt: skip

    def reserve(self, units: int = 1) -> QuotaState:
        """Hold units for enable checks, or raise :class:`QuotaExhausted` leaving this state."""
        self._check_available(units)
        return QuotaState(self.purchased_units, self.consumed_units, self.reserved_units + units)

    def release(self) -> QuotaState:
        """Return a reserved unit (its enable check failed, or the domain was disabled first)."""
        if self.reserved_units < 1:
            raise ValueError("no reserved unit to release")
        return QuotaState(self.purchased_units, self.consumed_units, self.reserved_units - 1)

    def consume_reserved(self) -> QuotaState:
        """Spend a reserved unit: monitoring started."""
        if self.reserved_units < 1:
            raise ValueError("no reserved unit to consume")
        return QuotaState(self.purchased_units, self.consumed_units + 1, self.reserved_units - 1)

    def consume(self, units: int = 1) -> QuotaState:
        """Spend units outright: how enables were counted before reservations existed."""
        self._check_available(units)
        return QuotaState(self.purchased_units, self.consumed_units + units, self.reserved_units)


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


def service_end(period_start: date) -> date:
    """Last monitored day: 365 days counting the first, so start + 364 (leap days included)."""
    return period_start + timedelta(days=DAYS_PER_UNIT - 1)


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


def needs_unit(period_start: date | None, today: date) -> bool:
    """Whether starting monitoring today needs a unit: no period ever started, or it is over.

    Within a running period (a re-enable after a disable) nothing is needed, since units are
    not refunded on disable. After the period, enabling renews with a new unit: this is how
    multi-year purchases get used.
    """
    return period_start is None or is_expired(period_start, today)


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
