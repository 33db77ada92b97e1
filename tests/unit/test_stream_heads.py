"""The bookkeeping of remembered stream heads: what is trusted, when, and for how long."""

from __future__ import annotations

from certwatch.platform.stream_heads import COMMITTED, RUNNING, StreamHeads


def test_committed_heads_are_guessed_only_for_any_or_the_same_expectation() -> None:
    heads = StreamHeads()
    heads.committed([("a", 3), ("b", 1)])
    assert heads.guess("a", None) == 3 and heads.guess("a", 3) == 3
    assert heads.guess("a", 2) is None  # the log tells a conflict from a stale head
    assert heads.guess("unknown", None) is None


def test_a_lower_head_never_replaces_a_higher_one() -> None:
    heads = StreamHeads()
    heads.committed([("a", 5)])
    heads.committed([("a", 4)])
    assert heads.guess("a", None) == 5


def test_tentative_heads_wait_for_their_verdict() -> None:
    heads = StreamHeads()
    heads.tentative(100, 7, {"a": 2})
    heads.tentative(101, 9, {"b": 4})
    heads.tentative(102, 11, {"c": 1})
    keys, xids, positions = heads.pending()
    assert xids == ["100", "101", "102"] and positions == [7, 9, 11]
    assert heads.guess("a", None) is None

    heads.settle(keys, [COMMITTED, "x", RUNNING])

    assert heads.guess("a", None) == 2
    assert heads.guess("b", None) is None  # rolled back: forgotten
    assert heads.guess("c", None) is None
    assert heads.pending()[0] == [(102, 11)]  # still running: asked again next time


def test_a_stale_head_is_forgotten_and_guessing_pauses() -> None:
    heads = StreamHeads(backoff=2)
    heads.committed([("a", 1), ("b", 1)])
    heads.stale(["a"])
    assert heads.guess("a", None) is None and heads.guess("b", None) == 1
    assert [heads.use() for _ in range(3)] == [False, False, True]


def test_memory_is_bounded() -> None:
    heads = StreamHeads(capacity=100, pending_limit=3)
    heads.committed((f"s{i}", 1) for i in range(1000))
    assert len(heads) <= 100
    assert heads.guess("s999", None) == 1  # the newest are kept
    for x in range(10):
        heads.tentative(x, x, {"a": x})
    assert [k for k, _ in heads.pending()[0]] == [7, 8, 9]


def test_clear_forgets_everything() -> None:
    heads = StreamHeads()
    heads.committed([("a", 1)])
    heads.tentative(1, 1, {"b": 1})
    heads.clear()
    assert heads.guess("a", None) is None and heads.pending()[0] == []


def test_guessing_many_agrees_with_guessing_one_at_a_time() -> None:
    heads = StreamHeads()
    heads.committed([("a", 3), ("b", 1), ("c", 2)])
    asked = [("a", None), ("b", 2), ("c", 2), ("d", None)]
    assert heads.guess_many(asked) == {s: h for s, v in asked if (h := heads.guess(s, v)) is not None}
    assert heads.guess_many(asked) == {"a": 3, "c": 2}
