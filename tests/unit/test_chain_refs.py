"""A published probe names its chains by fingerprint; only chains the domain's previous
probe did not store are stored."""

from __future__ import annotations

from certwatch.prober.chain_refs import by_reference

LEAF, MID, OTHER = {"sha256": "aa", "subject": "leaf"}, {"sha256": "bb"}, {"sha256": "cc"}


def _result(*chains: list[dict[str, str]]) -> dict[str, object]:
    return {"host": "x.test", "endpoints": [{"ip": f"127.0.0.{i}", "chain": c} for i, c in enumerate(chains)]}


def test_every_chain_is_a_reference_and_the_input_is_untouched() -> None:
    result = _result([LEAF, MID], [OTHER, MID], [])
    refs = by_reference(result)
    first, second, third = refs.result["endpoints"]
    assert first == {"ip": "127.0.0.0", "chain": [], "chain_ref": ["aa", "bb"]}
    assert second == {"ip": "127.0.0.1", "chain": [], "chain_ref": ["cc", "bb"]}
    assert third == {"ip": "127.0.0.2", "chain": []}
    assert refs.chains == {"aa,bb": ("aa", "bb"), "cc,bb": ("cc", "bb")}
    assert result["endpoints"][0]["chain"] == [LEAF, MID]  # type: ignore[index]


def test_only_chains_the_last_probe_did_not_store_are_stored() -> None:
    refs = by_reference(_result([LEAF, MID], [OTHER, MID]))
    chains, certs = refs.unstored(frozenset({"aa,bb"}))
    assert chains == [("cc", "bb")]
    assert [c.sha256 for c in certs] == ["bb", "cc"]
    assert refs.unstored(frozenset({"aa,bb", "cc,bb"})) == ([], [])
    chains, certs = refs.unstored(frozenset())
    assert len(chains) == 2 and {c.sha256 for c in certs} == {"aa", "bb", "cc"}
    assert next(c for c in certs if c.sha256 == "aa").facts == LEAF
