"""An account's quota, appended by the inventory on `quota-<account id>` streams.

Version 2 of `QuotaUnitConsumed` came with reservations; version 1 payloads are upcast.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from certwatch.contracts.payload import Category, Payload
from certwatch.platform.events import UPCASTERS, JsonDict

STREAM = Category("quota")
stream_id = STREAM.stream_id

QUOTA_PURCHASED = "QuotaPackagePurchased"
QUOTA_UNIT_RESERVED = "QuotaUnitReserved"
QUOTA_UNIT_RELEASED = "QuotaUnitReleased"
QUOTA_UNIT_CONSUMED = "QuotaUnitConsumed"
QUOTA_EVENTS = frozenset({QUOTA_PURCHASED, QUOTA_UNIT_RESERVED, QUOTA_UNIT_RELEASED, QUOTA_UNIT_CONSUMED})


class QuotaPackagePurchased(Payload, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = QUOTA_PURCHASED
    account_id: str
    units: int
    domain_count: int
    quantity: int
    years: int


class _UnitHeld(Payload, frozen=True, kw_only=True):
    """A unit held for (or given back by) the enable check of a domain's `generation`."""

    domain_id: str
    account_id: str
    generation: int


class QuotaUnitReserved(_UnitHeld, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = QUOTA_UNIT_RESERVED


class QuotaUnitReleased(_UnitHeld, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = QUOTA_UNIT_RELEASED


class QuotaUnitConsumed(Payload, frozen=True, kw_only=True):
    """`reserved`: the unit was reserved at enable (version 1 consumed one outright)."""

    TYPE: ClassVar[str] = QUOTA_UNIT_CONSUMED
    VERSION: ClassVar[int] = 2
    domain_id: str
    account_id: str
    generation: int | None = None  # not recorded by version 1
    period_start: date
    service_ends_on: date | None = None  # not recorded by version 1
    reserved: bool


@UPCASTERS.register(QUOTA_UNIT_CONSUMED, 1)
def _consumed_v1(data: JsonDict) -> JsonDict:
    """Before reservations a unit was consumed outright at enable."""
    return {**data, "reserved": False}
