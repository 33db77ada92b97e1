"""The instance lifecycle as a fold, what is due when, backoff, and application checks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import payload_type
from certwatch.hosting import lifecycle
from certwatch.hosting.application import checked_application, checked_years
from certwatch.hosting.lifecycle import Step
from certwatch.platform.errors import InvalidArgument

T0 = datetime(2027, 3, 1, tzinfo=UTC)
APP = hc.Application(names=["example.com"], key_type=hc.KeyType.EC256, company="Co",
                     contact_email="ops@example.com", validation=hc.Validation.HTTP_01)  # fmt: skip


def _created(year: int = 1, next_id: str | None = None) -> hc.InstanceCreated:
    state = hc.InstanceState.PENDING_APPLICATION if year == 1 else hc.InstanceState.NOT_ACTIVATED
    return hc.InstanceCreated(instance_id="i1", account_id="a", subscription_id="s", year=year, years=2,
                              state=state, next_instance_id=next_id, at=T0)  # fmt: skip


def _applied() -> lifecycle.Instance:
    return lifecycle.fold([
        _created(next_id="i2"),
        hc.InstanceStateChanged(instance_id="i1", account_id="a", state=hc.InstanceState.APPLYING, reason="applied",
                                at=T0, year_ends_at=T0 + lifecycle.YEAR),
        hc.ApplicationSubmitted(instance_id="i1", account_id="a", application=APP, automatic=False, at=T0),
    ])  # fmt: skip


def _requested(i: lifecycle.Instance) -> lifecycle.Instance:
    return lifecycle.evolve(i, hc.OrderRequested(instance_id="i1", account_id="a", attempt_id="t1",
                                                 certificate_id="c1", csr_pem="CSR", sealed_key="v1:x",
                                                 renewal=i.current is not None, at=T0))  # fmt: skip


def _issued_event(at: datetime, renew_at: datetime, kind: type[hc.CertificateIssued] = hc.CertificateIssued
                  ) -> hc.CertificateIssued:  # fmt: skip
    cert = hc.Certificate(serial="1", not_before=at, not_after=at + timedelta(days=100), names=["example.com"],
                          issuer="CA", cert_pem="", chain_pem="")  # fmt: skip
    return kind(instance_id="i1", account_id="a", certificate_id="c1", certificate=cert, sealed_key="v1:x",
                order_url="u", renew_at=renew_at, renew_source="lifetime", at=at)  # fmt: skip


def _issued(i: lifecycle.Instance, at: datetime, renew_at: datetime) -> lifecycle.Instance:
    issued = _issued_event(at, renew_at)
    i = lifecycle.evolve(i, issued)
    return lifecycle.evolve(
        i,
        hc.InstanceStateChanged(
            instance_id="i1", account_id="a", state=hc.InstanceState.HOSTED, reason="issued", at=at
        ),
    )


def test_nothing_is_due_before_an_application() -> None:
    created = lifecycle.fold([_created()])
    assert lifecycle.due_at(created) is None and lifecycle.step(created, T0 + lifecycle.YEAR) is None


def test_an_application_orders_then_a_recorded_order_resumes() -> None:
    applied = _applied()
    assert lifecycle.step(applied, T0) == Step.ORDER
    requested = _requested(applied)
    assert lifecycle.step(requested, T0) == Step.ORDER  # no URL yet: the order may still have to be placed
    placed = lifecycle.evolve(requested, hc.OrderPlaced(instance_id="i1", account_id="a", attempt_id="t1",
                                                        order_url="u", at=T0))  # fmt: skip
    assert lifecycle.step(placed, T0) == Step.RESUME and placed.orders_placed == 1


def test_a_failure_waits_for_retry_at_and_an_abandoned_order_is_replaced() -> None:
    placed = lifecycle.evolve(
        _requested(_applied()),
        hc.OrderPlaced(instance_id="i1", account_id="a", attempt_id="t1", order_url="u", at=T0),
    )
    retry = T0 + timedelta(minutes=1)
    failed = hc.OrderFailed(instance_id="i1", account_id="a", attempt_id="t1", order_url="u",
                            kind=hc.FailureKind.CA_UNREACHABLE, detail="", failures=1, retry_at=retry, renewal=False,
                            order_abandoned=False, at=T0)  # fmt: skip
    kept = lifecycle.evolve(placed, failed)
    assert lifecycle.step(kept, retry - timedelta(seconds=1)) is None
    assert lifecycle.step(kept, retry) == Step.RESUME
    abandoned = lifecycle.evolve(placed, hc.OrderFailed(**{**failed.to_data(), "order_abandoned": True,
                                                           "retry_at": retry, "at": T0}))  # fmt: skip
    assert abandoned.attempt is None and lifecycle.step(abandoned, retry) == Step.ORDER


def test_a_hosted_instance_renews_inside_its_year_and_ends_after_it() -> None:
    renew_at = T0 + timedelta(days=66)
    hosted = _issued(_requested(_applied()), T0, renew_at)
    assert lifecycle.due_at(hosted) == renew_at
    assert lifecycle.step(hosted, renew_at - timedelta(seconds=1)) is None
    assert lifecycle.step(hosted, renew_at) == Step.ORDER
    late = _issued(_requested(hosted), T0 + timedelta(days=330), T0 + timedelta(days=396))
    assert lifecycle.step(late, T0 + timedelta(days=396)) == Step.END_YEAR
    asked = lifecycle.evolve(
        late, hc.RenewalRequested(instance_id="i1", account_id="a", at=T0 + timedelta(days=331))
    )
    assert lifecycle.step(asked, T0 + timedelta(days=331)) == Step.ORDER  # "renew now" is honoured at once


def test_backoff_doubles_is_capped_and_respects_retry_after() -> None:
    rng = random.Random(7)
    delays = [lifecycle.backoff(n, rng=rng) for n in range(1, 20)]
    assert all(lifecycle.BACKOFF_BASE / 2 * 2 ** (n - 1) <= d or d >= lifecycle.BACKOFF_CAP / 2
               for n, d in enumerate(delays, start=1))  # fmt: skip
    assert max(delays) <= lifecycle.BACKOFF_CAP and delays[-1] >= lifecycle.BACKOFF_CAP / 2
    assert lifecycle.backoff(1, timedelta(hours=2), rng=rng) == timedelta(hours=2)


def test_lifetime_renewal_counts_two_thirds_from_not_before() -> None:
    nb = T0 - timedelta(hours=1)  # CAs backdate: the renewal comes that much earlier too
    assert lifecycle.lifetime_renewal(nb, nb + timedelta(days=90)) == nb + timedelta(days=60)
    # A certificate fetched days after issuance (a resumed order) is renewed no later.
    assert lifecycle.lifetime_renewal(T0, T0 + timedelta(days=45)) == T0 + timedelta(days=30)
    # A CA whose clock runs 10 days behind this one: its notBefore, on this clock.
    ahead = timedelta(days=10)
    assert lifecycle.lifetime_renewal(T0, T0 + timedelta(days=90), ahead) == T0 + timedelta(days=70)


def test_the_ca_clock_offset_ignores_the_date_headers_rounding() -> None:
    assert lifecycle.ca_clock_offset(T0, None) == timedelta(0)
    assert lifecycle.ca_clock_offset(T0, T0 - timedelta(seconds=40)) == timedelta(0)
    assert lifecycle.ca_clock_offset(T0, T0 - timedelta(days=3)) == timedelta(days=3)
    assert lifecycle.ca_clock_offset(T0, T0 + timedelta(hours=2)) == -timedelta(hours=2)


@pytest.mark.parametrize("years", [0, 1, 4])
def test_hosting_years_other_than_2_or_3_are_refused_naming_the_field(years: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        checked_years(years)
    assert refused.value.violations[0][0] == "years"


def test_application_checks_every_field_at_once() -> None:
    with pytest.raises(InvalidArgument) as refused:
        checked_application(
            ["ok.example.com", "bad..name", "*.example.com"], "dsa", "", "nobody", "tls-alpn-01"
        )
    fields = {f for f, _ in refused.value.violations}
    assert fields == {"domains[1]", "key_type", "company", "contact_email", "validation", "domains[2]"}
    app = checked_application(
        ["Example.COM", "example.com", "*.example.com"], "", "Co", "Ops@Example.com", "dns-01"
    )
    assert app.names == ["example.com", "*.example.com"] and app.key_type == hc.KeyType.EC256
    assert app.contact_email == "Ops@example.com" and app.validation == hc.Validation.DNS_01


def test_no_renewal_sooner_than_a_tenth_of_the_lifetime_or_a_day() -> None:
    assert lifecycle.earliest_renewal(T0, T0 + timedelta(days=6)) == timedelta(hours=14, minutes=24)
    assert lifecycle.earliest_renewal(T0, T0 + timedelta(days=90)) == timedelta(days=1)


def test_instance_events_are_registered_under_distinct_types() -> None:
    types = [cls.TYPE for cls in hc.INSTANCE_EVENTS]
    assert len(set(types)) == len(types)
    assert all(payload_type(t) is cls for t, cls in zip(types, hc.INSTANCE_EVENTS, strict=True))
    assert {payload_type(t) for t in hc.NOTIFIER_EVENTS} == {
        hc.CertificateRenewed, hc.OrderFailed, hc.HostingEnding, hc.UploadedCertificateExpiring}  # fmt: skip


def test_a_renewal_round_trips_and_stays_a_certificate_issued() -> None:
    renewed = _issued_event(T0, T0, hc.CertificateRenewed)
    again = hc.CertificateRenewed.from_data(renewed.to_data())
    assert again == renewed and isinstance(again, hc.CertificateIssued) and again.ari_check_at is None
