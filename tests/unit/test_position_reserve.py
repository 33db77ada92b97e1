"""The position reserve hands each append a rising run of unused positions."""

from __future__ import annotations

from certwatch.platform.position_reserve import PositionReserve


def test_each_take_is_a_rising_run_even_when_a_refill_holds_lower_positions() -> None:
    reserve = PositionReserve()
    assert reserve.take(1) is None
    reserve.add([1001, 1002, 1003, 1004])
    assert reserve.take(2) == [1001, 1002]
    reserve.add([7, 8, 9])  # another session's cached block, below what is left
    assert reserve.take(4) == [7, 8, 9, 1003]
    assert reserve.take(2) is None  # too few left: nothing taken
    assert reserve.take(1) == [1004]


def test_positions_are_never_handed_out_twice_and_clear_forgets_them() -> None:
    reserve = PositionReserve()
    reserve.add(list(range(100)))
    taken = [p for _ in range(10) for p in (reserve.take(10) or [])]
    assert sorted(taken) == list(range(100)) and reserve.take(1) is None
    reserve.add([5, 6])
    reserve.clear()
    assert reserve.take(1) is None
