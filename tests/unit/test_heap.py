"""`heap.settle`: the startup heap leaves the collector's generations, young collections
run less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from certwatch.platform import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_what_the_process_holds_and_raises_the_young_threshold(restored_gc: None) -> None:
    gc.unfreeze()
    held = [[i] for i in range(1000)]  # containers alive at "startup"
    heap.settle()
    assert gc.get_freeze_count() >= len(held)
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD > 700
