"""Probe results reference chains the domain's previous result already reported in full."""

from __future__ import annotations

from certwatch.prober.compaction import chain_key, compact

LEAF, MID, OTHER = {"sha256": "aa"}, {"sha256": "bb"}, {"sha256": "cc"}


def _result(*chains: list[dict[str, str]]) -> dict[str, object]:
    return {"host": "x.test", "endpoints": [{"ip": f"127.0.0.{i}", "chain": c} for i, c in enumerate(chains)]}


def test_first_report_is_full_and_remembered() -> None:
    out, reported = compact(_result([LEAF, MID]), frozenset())
    assert out["endpoints"][0]["chain"] == [LEAF, MID]  # type: ignore[index]
    assert reported == {chain_key([LEAF, MID])} == {"aa,bb"}


def test_same_chain_again_is_a_reference_and_other_chains_stay_full() -> None:
    result = _result([LEAF, MID], [OTHER, MID], [])
    out, reported = compact(result, frozenset({"aa,bb"}))
    first, second, third = out["endpoints"]  # type: ignore[misc]
    assert first == {"ip": "127.0.0.0", "chain": [], "chain_ref": ["aa", "bb"]}
    assert second["chain"] == [OTHER, MID] and "chain_ref" not in second
    assert third == {"ip": "127.0.0.2", "chain": []}
    assert reported == {"aa,bb", "cc,bb"}
    assert result["endpoints"][0]["chain"] == [LEAF, MID]  # type: ignore[index]  # input untouched


def test_a_chain_not_seen_this_round_is_forgotten() -> None:
    _, reported = compact(_result([OTHER]), frozenset({"aa,bb"}))
    assert reported == {"cc"}
