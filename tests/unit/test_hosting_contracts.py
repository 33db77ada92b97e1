"""The hosting contract: every event type is registered once, and alerts name real events."""

from __future__ import annotations

from datetime import UTC, datetime

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import payload_type


def test_instance_events_are_registered_under_distinct_types() -> None:
    types = [cls.TYPE for cls in hc.INSTANCE_EVENTS]
    assert len(set(types)) == len(types) and all(payload_type(t) is cls for t, cls in zip(types, hc.INSTANCE_EVENTS,
                                                                                           strict=True))  # fmt: skip
    assert {payload_type(t) for t in hc.NOTIFIER_EVENTS} == {
        hc.CertificateRenewed,
        hc.OrderFailed,
        hc.HostingEnding,
        hc.UploadedCertificateExpiring,
    }


def test_a_renewal_round_trips_and_stays_a_certificate_issued() -> None:
    at = datetime(2027, 3, 1, tzinfo=UTC)
    cert = hc.Certificate(serial="0a", not_before=at, not_after=at, names=["example.com"], issuer="CA",
                          cert_pem="-", chain_pem="")  # fmt: skip
    renewed = hc.CertificateRenewed(
        instance_id="i",
        account_id="a",
        certificate_id="c",
        certificate=cert,
        sealed_key="v1:x",
        order_url="u",
        renew_at=at,
        renew_source="ari",
        at=at,
    )
    again = hc.CertificateRenewed.from_data(renewed.to_data())
    assert again == renewed and isinstance(again, hc.CertificateIssued) and again.ari_check_at is None
