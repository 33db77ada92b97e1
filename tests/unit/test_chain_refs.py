"""A published probe names its chains by fingerprint; only chains the domain's previous
probe did not store are stored."""

from __future__ import annotations

from certwatch.prober.chain_refs import by_reference
from tests.support.probe_results import cert, intermediate, refused, result, served

LEAF, MID, OTHER = cert(days=90), intermediate(), cert(days=30, cn="other.example.com")


def test_every_presented_chain_is_named_by_its_fingerprints() -> None:
    refs = by_reference(
        result(served("127.0.0.1", LEAF, MID), served("127.0.0.2", OTHER, MID), refused("127.0.0.3"))
    )
    assert refs.chains == {
        f"{LEAF.sha256},{MID.sha256}": (LEAF.sha256, MID.sha256),
        f"{OTHER.sha256},{MID.sha256}": (OTHER.sha256, MID.sha256),
    }


def test_only_chains_the_last_probe_did_not_store_are_stored() -> None:
    refs = by_reference(result(served("127.0.0.1", LEAF, MID), served("127.0.0.2", OTHER, MID)))
    first, second = f"{LEAF.sha256},{MID.sha256}", f"{OTHER.sha256},{MID.sha256}"
    chains, certs = refs.unstored(frozenset({first}))
    assert chains == [(OTHER.sha256, MID.sha256)]
    assert [c.sha256 for c in certs] == sorted([MID.sha256, OTHER.sha256])
    assert refs.unstored(frozenset({first, second})) == ([], [])
    chains, certs = refs.unstored(frozenset())
    assert len(chains) == 2 and {c.sha256 for c in certs} == {LEAF.sha256, MID.sha256, OTHER.sha256}
    assert next(c for c in certs if c.sha256 == LEAF.sha256).facts == LEAF.to_dict()
