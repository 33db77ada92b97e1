"""The attributes the services' metrics carry stay small closed sets whatever the traffic: a
probe's outcome, a VOD request's action (a made-up one is `other`)."""

from __future__ import annotations

from datetime import UTC, datetime

from certwatch.prober.metrics import outcome
from certwatch.rules.facts import ERR_REFUSED, ERR_TIMEOUT, PHASE_DONE, PHASE_TCP, EndpointFacts, ProbeResult
from certwatch.vod.metrics import action_of

DONE = EndpointFacts("192.0.2.1", PHASE_DONE, connect_ms=1.0, handshake_ms=2.0)
REFUSED = EndpointFacts("192.0.2.2", PHASE_TCP, ERR_REFUSED, "refused")
TIMED_OUT = EndpointFacts("192.0.2.3", PHASE_TCP, ERR_TIMEOUT, "timed out")


def _result(*endpoints: EndpointFacts, dns_error: str | None = None) -> ProbeResult:
    return ProbeResult(
        host="a.example", port=443, started_at=datetime.now(UTC), duration_ms=3.0,
        addresses=tuple(e.ip for e in endpoints), dns_error=dns_error, dns_ms=0.5, endpoints=endpoints,
    )  # fmt: skip


def test_a_probe_outcome_is_ok_partial_dns_or_the_first_address_error_kind() -> None:
    assert outcome(_result(DONE, DONE)) == "ok"
    assert outcome(_result(DONE, REFUSED)) == "partial"
    assert outcome(_result(TIMED_OUT, REFUSED)) == ERR_TIMEOUT
    assert outcome(_result(dns_error="no A or AAAA records")) == "dns"


def test_a_vod_action_is_one_the_api_serves_or_other() -> None:
    known = {"DescribeVodDomainCertificateInfo"}
    assert (
        action_of({"Action": "DescribeVodDomainCertificateInfo"}, None, known)
        == "DescribeVodDomainCertificateInfo"
    )
    assert action_of({}, "DescribeVodDomainCertificateInfo", known) == "DescribeVodDomainCertificateInfo"
    assert action_of({"Action": "x" * 1000}, None, known) == "other"
    assert action_of({}, None, known) == "other"
