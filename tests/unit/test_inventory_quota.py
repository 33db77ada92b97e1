"""Unit tests for quota arithmetic and service periods (365 monitoring days, first day counted)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certwatch.rules.quota import (
    DAYS_PER_UNIT,
    MAX_PACKAGE_DOMAINS,
    MAX_PACKAGE_QUANTITY,
    MAX_PACKAGE_YEARS,
    QuotaExhausted,
    QuotaState,
    ending_soon,
    is_expired,
    needs_unit,
    purchase_units,
    remaining_days,
    service_end,
)
from certwatch.rules.targets import ValidationError

_DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31))

# --- service period -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_enabled", "last_day"),
    [
        (date(2022, 6, 1), date(2023, 5, 31)),  # the product's own example
        (date(2024, 3, 1), date(2025, 2, 28)),  # starts after Feb 29 2024: no leap day inside
        (date(2023, 6, 1), date(2024, 5, 30)),  # spans Feb 29 2024: still exactly 365 days
        (date(2024, 1, 1), date(2024, 12, 30)),  # a leap year in full
        (date(2023, 1, 1), date(2023, 12, 31)),
        (date(2024, 2, 29), date(2025, 2, 27)),
        (date(2023, 3, 1), date(2024, 2, 28)),  # ends the day before the leap day
        (date(2023, 3, 2), date(2024, 2, 29)),  # ends on the leap day itself
    ],
)
def test_service_end(first_enabled: date, last_day: date) -> None:
    assert service_end(first_enabled) == last_day
    assert remaining_days(first_enabled, last_day) == 1
    assert remaining_days(first_enabled, last_day + timedelta(days=1)) == 0
    assert not is_expired(first_enabled, last_day)
    assert is_expired(first_enabled, last_day + timedelta(days=1))


def test_seed_example_day_by_day() -> None:
    start = date(2022, 6, 1)
    assert remaining_days(start, start) == 365
    assert remaining_days(start, date(2022, 6, 2)) == 364
    assert remaining_days(start, date(2023, 5, 30)) == 2
    assert remaining_days(start, date(2023, 5, 31)) == 1
    assert remaining_days(start, date(2023, 6, 1)) == 0
    assert remaining_days(start, date(2030, 1, 1)) == 0


def test_remaining_days_before_start_is_capped() -> None:
    start = date(2024, 6, 1)
    assert remaining_days(start, start - timedelta(days=10)) == DAYS_PER_UNIT
    assert not is_expired(start, start - timedelta(days=10))


@settings(max_examples=200, deadline=None)
@given(_DATES, st.integers(0, DAYS_PER_UNIT - 1))
def test_remaining_days_decreases_by_exactly_one_per_day(start: date, offset: int) -> None:
    today = start + timedelta(days=offset)
    assert remaining_days(start, today) == DAYS_PER_UNIT - offset
    assert remaining_days(start, today) - remaining_days(start, today + timedelta(days=1)) == 1


@settings(max_examples=200, deadline=None)
@given(_DATES)
def test_period_is_always_365_days_including_the_first(start: date) -> None:
    end = service_end(start)
    assert (end - start).days + 1 == DAYS_PER_UNIT
    days = [start + timedelta(days=i) for i in range(DAYS_PER_UNIT + 2)]
    assert sum(1 for day in days if remaining_days(start, day) > 0) == DAYS_PER_UNIT
    assert all(is_expired(start, day) == (remaining_days(start, day) == 0) for day in days)


# --- purchases and units ------------------------------------------------------------------


def test_purchase_units() -> None:
    assert purchase_units(1) == 1
    assert purchase_units(10, quantity=2) == 20
    assert purchase_units(5, quantity=3, years=2) == 30
    assert purchase_units(MAX_PACKAGE_DOMAINS, MAX_PACKAGE_QUANTITY, MAX_PACKAGE_YEARS) > 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((0, 1, 1), "domain_count"),
        ((MAX_PACKAGE_DOMAINS + 1, 1, 1), "domain_count"),
        ((1, 0, 1), "quantity"),
        ((1, MAX_PACKAGE_QUANTITY + 1, 1), "quantity"),
        ((1, 1, 0), "years"),
        ((1, 1, MAX_PACKAGE_YEARS + 1), "years"),
        ((True, 1, 1), "domain_count"),
    ],
)
def test_purchase_units_bounds(args: tuple[int, int, int], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        purchase_units(*args)
    assert (caught.value.field, caught.value.rule) == (field, "out_of_range")


def test_quota_state_consume_and_purchase() -> None:
    state = QuotaState().purchase(purchase_units(2))
    assert state == QuotaState(2, 0)
    state = state.consume()
    assert (state.consumed_units, state.available_units) == (1, 1)
    state = state.consume()
    assert state.available_units == 0
    with pytest.raises(QuotaExhausted) as caught:
        state.consume()
    assert (caught.value.purchased, caught.value.consumed, caught.value.requested) == (2, 2, 1)
    assert caught.value.available == 0
    assert "buy a package" in str(caught.value)
    assert state == QuotaState(2, 2)  # a refused consume leaves the state as it was
    assert state.purchase(3).consume(3) == QuotaState(5, 5)


def test_a_reservation_holds_a_unit_until_consumed_or_released() -> None:
    state = QuotaState(2).reserve()
    assert (state.consumed_units, state.reserved_units, state.available_units) == (0, 1, 1)
    started = state.consume_reserved()
    assert started == QuotaState(2, 1, 0)
    assert state.release() == QuotaState(2, 0, 0)
    held = state.reserve()
    with pytest.raises(QuotaExhausted) as caught:
        held.reserve()  # both units are held by pending enable checks
    assert (caught.value.reserved, caught.value.available) == (2, 0)
    assert "reserved" in str(caught.value) and "returns its unit" in str(caught.value)
    with pytest.raises(QuotaExhausted):
        QuotaState(2, 1, 1).consume()  # reserved units are not available to anyone else


def test_quota_state_invariants() -> None:
    with pytest.raises(ValueError):
        QuotaState(1, 2)
    with pytest.raises(ValueError):
        QuotaState(2, 1, 2)
    with pytest.raises(ValueError):
        QuotaState(-1, 0)
    with pytest.raises(ValueError):
        QuotaState(1, 0, -1)
    with pytest.raises(ValueError):
        QuotaState(1, 0).consume(0)
    with pytest.raises(ValueError):
        QuotaState(1, 0).reserve(0)
    with pytest.raises(ValueError):
        QuotaState(1, 0).purchase(0)
    with pytest.raises(ValueError):
        QuotaState(1, 0).release()  # nothing reserved
    with pytest.raises(ValueError):
        QuotaState(1, 0).consume_reserved()
    with pytest.raises(QuotaExhausted):
        QuotaState(3, 1).consume(3)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.lists(st.sampled_from(["reserve", "release", "consume_reserved", "purchase"])))
def test_reservations_never_oversell(units: int, steps: list[str]) -> None:
    state = QuotaState(units)
    for step in steps:
        try:
            state = state.purchase(1) if step == "purchase" else getattr(state, step)()
        except (QuotaExhausted, ValueError):
            continue
        assert state.consumed_units + state.reserved_units + state.available_units == state.purchased_units
        assert state.available_units >= 0


# --- when a unit is needed ---------------------------------------------------------------


def test_a_first_start_needs_a_unit() -> None:
    assert needs_unit(None, date(2022, 6, 1))


@settings(max_examples=100, deadline=None)
@given(_DATES, st.integers(0, DAYS_PER_UNIT - 1))
def test_a_re_enable_within_the_period_needs_no_unit(start: date, offset: int) -> None:
    later = start + timedelta(days=offset)
    assert not needs_unit(start, later)
    # the clock kept running while disabled
    assert remaining_days(start, later) == DAYS_PER_UNIT - offset


def test_enabling_after_the_period_renews_with_a_unit() -> None:
    start = date(2022, 6, 1)
    assert not needs_unit(start, service_end(start))
    assert needs_unit(start, service_end(start) + timedelta(days=1))


# --- ending soon --------------------------------------------------------------------------


def test_ending_soon() -> None:
    today = date(2023, 5, 1)
    domains = {
        "a": date(2022, 6, 1),  # 31 days left
        "b": date(2022, 5, 5),  # 4 days left
        "c": date(2023, 1, 1),  # 246 days left
        "d": None,  # never enabled
        "e": date(2021, 1, 1),  # expired long ago
        "f": date(2022, 5, 2),  # last day today
        "g": date(2022, 5, 5),  # ties keep input order
    }
    assert ending_soon(domains, today, 30) == [("f", 1), ("b", 4), ("g", 4)]
    assert ending_soon(domains, today, 31) == [("f", 1), ("b", 4), ("g", 4), ("a", 31)]
    assert ending_soon(domains, today, 0) == []
    assert ending_soon({}, today, 30) == []
    with pytest.raises(ValueError):
        ending_soon(domains, today, -1)
    with pytest.raises(ValueError):
        ending_soon(domains, today, DAYS_PER_UNIT + 1)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(), st.none() | _DATES, max_size=20), _DATES, st.integers(0, 365))
def test_ending_soon_matches_remaining_days(
    domains: dict[int, date | None], today: date, within: int
) -> None:
    found = ending_soon(domains, today, within)
    expected = {
        key
        for key, start in domains.items()
        if start is not None and 0 < remaining_days(start, today) <= within
    }
    assert {key for key, _ in found} == expected
    assert [left for _, left in found] == sorted(left for _, left in found)
