"""Which probes become `DomainClassified` events: changes, enable checks, new generations,
a problem seen again up to the streak limit, and the day marks; never a stable verdict."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from certwatch.classifier.verdicts import STREAK_REPEATS, Decision, VerdictState, classified, decide
from certwatch.contracts.probe import ObservedResult, ProbeObserved
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import classify
from certwatch.rules.facts import ProbeResult
from tests.support.probe_results import NOW, cert, intermediate, refused, result, served

GOOD = (cert(days=90), intermediate())


def _probe(probe: ProbeResult, *, generation: int = 1, first_check: bool = False) -> ProbeObserved:
    return ProbeObserved(
        observation_id=str(uuid.uuid4()), domain_id=str(uuid.UUID(int=1)), account_id="a", host=probe.host,
        port=probe.port, generation=generation, first_check=first_check, result=ObservedResult.of(probe),
    )  # fmt: skip


def _run(probes: list[tuple[ProbeResult, int]], state: VerdictState | None = None) -> list[Decision]:
    decisions = []
    for probe, generation in probes:
        decision = decide(_probe(probe, generation=generation), probe, state)
        decisions.append(decision)
        state = decision.state
    return decisions


def _at(minutes: int, *endpoints: object) -> ProbeResult:
    return result(*endpoints, at=NOW + timedelta(minutes=minutes))  # type: ignore[arg-type]


def test_a_stable_domain_appends_its_first_verdict_and_nothing_more() -> None:
    decisions = _run([(_at(m, served("192.0.2.1", *GOOD)), 1) for m in range(20)])
    assert [len(d.events) for d in decisions] == [1] + [0] * 19
    assert [d.state.streak for d in decisions] == list(range(1, 21))
    assert decisions[-1].state.checked_at == NOW + timedelta(minutes=19)


def test_a_failure_repeats_up_to_the_streak_limit_then_the_recovery_is_appended() -> None:
    probes = [(_at(0, served("192.0.2.1", *GOOD)), 1)]
    probes += [(_at(m, refused("192.0.2.1")), 1) for m in range(1, 9)]
    probes += [(_at(9, served("192.0.2.1", *GOOD)), 1), (_at(10, served("192.0.2.1", *GOOD)), 1)]
    decisions = _run(probes)
    appended = [d.classified.streak if d.events else None for d in decisions]
    assert appended == [1, 1, 2, 3, 4, 5, None, None, None, 1, None]
    assert STREAK_REPEATS == 5
    failing = decisions[1].classified
    assert failing.verdict.status is Status.ABNORMAL
    assert failing.verdict.primary_cause is Cause.NETWORK_CONNECTION_FAILURE
    assert decisions[9].classified.verdict.status is Status.SECURE


def test_an_enable_check_and_a_new_generation_are_always_appended() -> None:
    first = _run([(_at(0, served("192.0.2.1", *GOOD)), 1)])[0]
    again = decide(_probe(_at(1, served("192.0.2.1", *GOOD)), first_check=True), _at(1, served("192.0.2.1", *GOOD)),
                   first.state)  # fmt: skip
    assert len(again.events) == 1
    regenerated = _run([(_at(2, served("192.0.2.1", *GOOD)), 2)], first.state)[0]
    assert len(regenerated.events) == 1 and regenerated.state.generation == 2


def test_days_left_counts_only_when_a_mark_is_crossed() -> None:
    expiring = (cert(days=62), intermediate())
    days = [_at(60 * 24 * n, served("192.0.2.1", *expiring)) for n in range(5)]
    decisions = _run([(probe, 1) for probe in days])
    assert [d.classified.verdict.days_left for d in decisions] == [62, 61, 60, 59, 58]
    assert {d.classified.verdict.status for d in decisions} == {Status.SECURE}
    assert [bool(d.events) for d in decisions] == [True, False, True, False, False]  # 60 is a mark


def test_the_event_id_is_the_observations_so_a_redelivery_appends_the_same_event() -> None:
    probe = _at(0, served("192.0.2.1", *GOOD))
    message = _probe(probe)
    assert decide(message, probe, None).events[0].event_id == decide(message, probe, None).events[0].event_id
    assert (
        decide(_probe(probe), probe, None).events[0].event_id
        != decide(message, probe, None).events[0].event_id
    )


def test_each_address_has_the_verdict_it_would_have_alone() -> None:
    for probe in (_at(0, served("192.0.2.1", cert(days=-1), intermediate())),
                  _at(0, served("192.0.2.1", *GOOD), refused("192.0.2.2"))):  # fmt: skip
        verdict = classified(_probe(probe), probe)
        for endpoint, address in zip(probe.endpoints, verdict.endpoints, strict=True):
            alone = classify(replace(probe, endpoints=(endpoint,)), first_check=False, now=probe.started_at)
            assert (address.ip, address.status, address.primary_cause, address.causes) == (
                endpoint.ip, alone.status, alone.primary_cause, alone.causes)  # fmt: skip
        assert {a.status for a in verdict.endpoints} == (
            {Status.ABNORMAL} if len(probe.endpoints) == 1 else {Status.SECURE, Status.ABNORMAL}
        )
