"""Observation and change detection: what counts as an ownership change, and what does not."""

from __future__ import annotations

from dataclasses import replace

from certwatch.classifier.observation import (
    ChangeKind,
    Observation,
    changes,
    new_certificates,
    observe,
)
from tests.support.probe_results import cert, intermediate, refused, result, served, unresolved

LEAF, INT = cert(), intermediate()


def _kinds(before: Observation | None, after: Observation) -> list[ChangeKind]:
    return [c.kind for c in changes(before, after)]


def _obs(*endpoints: object, previous: Observation | None = None) -> Observation:
    found = observe(result(*endpoints), previous)  # type: ignore[arg-type]
    assert found is not None
    return found


def test_first_observation_is_a_baseline_not_a_change() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    assert first.serving == {"192.0.2.1": (LEAF.sha256, INT.sha256)}
    assert changes(None, first) == []
    assert new_certificates(None, first) == {LEAF.sha256, INT.sha256}


def test_the_same_chain_again_is_equal_so_nothing_is_recorded() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    assert _obs(served("192.0.2.1", LEAF, INT), previous=first) == first


def test_outages_are_unknown_not_changes() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    assert observe(unresolved(), first) == first
    assert _obs(refused("192.0.2.1"), previous=first) == first


def test_a_new_serial_with_the_same_subject_issuer_and_key_is_a_renewal() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    renewed = cert(serial=2)
    after = _obs(served("192.0.2.1", renewed, INT), previous=first)
    assert _kinds(first, after) == [ChangeKind.RENEWAL]
    assert changes(first, after)[0].after == (renewed.sha256,)
    assert new_certificates(first, after) == {renewed.sha256}


def test_subject_issuer_and_key_changes_are_each_named() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    other = cert("other.example.test", key="k2", issuer="CN=Other CA")
    after = _obs(served("192.0.2.1", other, INT), previous=first)
    assert _kinds(first, after) == [ChangeKind.SUBJECT, ChangeKind.ISSUER, ChangeKind.PUBLIC_KEY]
    assert changes(first, after)[2].before == (LEAF.public_key_sha256,)


def test_a_rekey_is_a_key_change_not_a_renewal() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    after = _obs(served("192.0.2.1", cert(serial=2, key="k2"), INT), previous=first)
    assert _kinds(first, after) == [ChangeKind.PUBLIC_KEY]


def test_missing_key_fingerprints_from_old_results_are_not_a_key_change() -> None:
    keyless = replace(LEAF, public_key_sha256=None)
    first = _obs(served("192.0.2.1", keyless, INT))
    after = _obs(served("192.0.2.1", cert(serial=2, key="k2"), INT), previous=first)
    assert _kinds(first, after) == [ChangeKind.RENEWAL]


def test_a_new_intermediate_under_the_same_leaf_is_a_chain_change() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    after = _obs(served("192.0.2.1", LEAF, intermediate(key="int2")), previous=first)
    assert _kinds(first, after) == [ChangeKind.CHAIN]
    assert _kinds(after, _obs(served("192.0.2.1", LEAF), previous=after)) == [ChangeKind.CHAIN]


def test_address_changes_and_a_stale_node() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT))
    two = _obs(served("192.0.2.1", LEAF, INT), served("192.0.2.2", LEAF, INT), previous=first)
    assert _kinds(first, two) == [ChangeKind.ADDRESSES]
    assert changes(first, two)[0].after == ("192.0.2.1", "192.0.2.2")
    # one node renews, the other still serves the old leaf: both leaves are listed after
    mixed = _obs(served("192.0.2.1", cert(serial=2), INT), served("192.0.2.2", LEAF, INT), previous=two)
    renewal = changes(two, mixed)
    assert [c.kind for c in renewal] == [ChangeKind.RENEWAL]
    assert set(renewal[0].after) == {LEAF.sha256, cert(serial=2).sha256}


def test_observation_round_trips_through_json() -> None:
    first = _obs(served("192.0.2.1", LEAF, INT), refused("192.0.2.2"))
    assert Observation.from_dict(first.to_dict()) == first
