"""classify() over synthetic probe results: precedence and enable/monitor semantics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from certwatch.rules import facts as f
from certwatch.rules.causes import CAUSE_INFO, Cause, Status
from certwatch.rules.classify import Verdict, classify, days_left, recommended_action
from certwatch.rules.precedence import PRECEDENCE, ordered, primary

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def cert(cn: str = "www.example.test", *, days: float = 90, issuer_org: str = "Example CA") -> f.CertFacts:
    return f.CertFacts(
        subject=f"CN={cn}",
        subject_cn=cn,
        issuer="CN=Example Issuing,O=Example CA",
        issuer_cn="Example Issuing",
        issuer_org=issuer_org,
        serial="1",
        not_before=NOW - timedelta(days=10),
        not_after=NOW + timedelta(days=days),
        sha256=cn.encode().hex(),
        dns_names=(cn,),
        ip_addresses=(),
        key_type="EC",
        key_bits=256,
        signature_algorithm="ecdsa_with_sha256",
        signature_hash="sha256",
        is_ca=False,
        self_signed=False,
        ocsp_urls=(),
    )


def done(ip: str = "192.0.2.1", *, days: float = 90, problems: tuple[str, ...] = ()) -> f.EndpointFacts:
    return f.EndpointFacts(
        ip=ip,
        phase=f.PHASE_DONE,
        tls_version="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        forward_secret=True,
        chain=(cert(days=days), cert("Example Issuing", days=900)),
        problems=tuple(f.ChainProblem(code, code, 0) for code in problems),
        verified=not problems,
        ats=f.AtsResult(True, ()),
    )


def failed(kind: str, ip: str = "192.0.2.9") -> f.EndpointFacts:
    phase = {f.ERR_POLICY: f.PHASE_POLICY, f.ERR_REFUSED: f.PHASE_TCP}.get(kind, f.PHASE_TLS)
    return f.EndpointFacts(ip=ip, phase=phase, error_kind=kind, error=kind)


def result(*endpoints: f.EndpointFacts, dns_error: str | None = None) -> f.ProbeResult:
    return f.ProbeResult(
        host="www.example.test",
        port=443,
        started_at=NOW,
        duration_ms=1.0,
        addresses=tuple(e.ip for e in endpoints),
        dns_error=dns_error,
        dns_ms=0.1,
        endpoints=endpoints,
    )


def test_secure_reports_brand_validity_and_days_left() -> None:
    verdict = classify(result(done()), first_check=True, now=NOW)
    assert verdict.status is Status.SECURE and verdict.primary_cause is None
    assert verdict.brand == "Example CA" and verdict.days_left == 90
    assert verdict.valid_to == NOW + timedelta(days=90)


def test_precedence_matches_design() -> None:
    assert (
        PRECEDENCE.index(Cause.NETWORK_CONNECTION_FAILURE)
        < PRECEDENCE.index(Cause.NO_SSL_CERTIFICATE)
        < PRECEDENCE.index(Cause.EXPIRED)
        < PRECEDENCE.index(Cause.CHAIN_VALIDATION_FAILED)
        < PRECEDENCE.index(Cause.CERTIFICATE_MISMATCH)
        < PRECEDENCE.index(Cause.ABOUT_TO_EXPIRE)
    )
    assert set(PRECEDENCE) == set(Cause)


def test_expired_mismatched_chain_lists_all_with_expired_first() -> None:
    endpoint = done(days=-1, problems=(f.HOSTNAME_MISMATCH, f.CHAIN_INCOMPLETE))
    verdict = classify(result(endpoint), first_check=False, now=NOW)
    assert verdict.causes == (
        Cause.EXPIRED,
        Cause.CHAIN_VALIDATION_FAILED,
        Cause.CERTIFICATE_MISMATCH,
    )
    assert verdict.primary_cause is Cause.EXPIRED and verdict.status is Status.ABNORMAL


def test_about_to_expire_boundary_is_30_calendar_days() -> None:
    just_under = classify(result(done(days=29.99)), first_check=False, now=NOW)
    exactly = classify(result(done(days=30)), first_check=False, now=NOW)
    assert just_under.causes == (Cause.ABOUT_TO_EXPIRE,) and just_under.days_left == 29
    assert exactly.status is Status.SECURE and exactly.days_left == 30
    assert days_left(NOW - timedelta(hours=1), NOW) == -1


def test_time_causes_are_recomputed_from_now() -> None:
    probed = result(done(days=40))
    later = classify(probed, first_check=False, now=NOW + timedelta(days=41))
    assert later.causes == (Cause.EXPIRED,)


def test_enable_time_failures() -> None:
    cases = {
        f.ERR_POLICY: Cause.INVALID_DOMAIN,
        f.ERR_REFUSED: Cause.CONNECTION_FAILURE,
        f.ERR_TIMEOUT: Cause.CONNECTION_FAILURE,
        f.ERR_NO_TLS: Cause.INVALID_PORT,
        f.ERR_TLS: Cause.INVALID_PORT,
    }
    for kind, cause in cases.items():
        verdict = classify(result(failed(kind)), first_check=True, now=NOW)
        assert (verdict.status, verdict.primary_cause) == (Status.ENABLE_FAILED, cause), kind
    dns = classify(result(dns_error="NXDOMAIN"), first_check=True, now=NOW)
    assert dns.causes == (Cause.INVALID_IP,)


def test_monitoring_time_failures() -> None:
    for kind in (f.ERR_POLICY, f.ERR_REFUSED, f.ERR_TIMEOUT, f.ERR_UNREACHABLE):
        verdict = classify(result(failed(kind)), first_check=False, now=NOW)
        assert verdict.causes == (Cause.NETWORK_CONNECTION_FAILURE,), kind
    for kind in (f.ERR_NO_TLS, f.ERR_TLS):
        verdict = classify(result(failed(kind)), first_check=False, now=NOW)
        assert verdict.causes == (Cause.NO_SSL_CERTIFICATE,), kind
    dns = classify(result(dns_error="NXDOMAIN"), first_check=False, now=NOW)
    assert (dns.status, dns.causes) == (Status.ABNORMAL, (Cause.NETWORK_CONNECTION_FAILURE,))


def test_certificate_problems_at_enable_are_abnormal() -> None:
    verdict = classify(result(done(problems=(f.SELF_SIGNED,))), first_check=True, now=NOW)
    assert (verdict.status, verdict.causes) == (Status.ABNORMAL, (Cause.CHAIN_VALIDATION_FAILED,))


def test_one_failing_address_among_several_is_named() -> None:
    verdict = classify(
        result(done("192.0.2.1"), failed(f.ERR_REFUSED, "192.0.2.2")), first_check=False, now=NOW
    )
    assert verdict.causes == (Cause.NETWORK_CONNECTION_FAILURE,)
    assert [x.ip for x in verdict.findings] == ["192.0.2.2"]
    assert verdict.brand == "Example CA"


def test_expiry_counts_over_the_path_including_the_stores_root() -> None:
    root = f.TrustedRoot("CN=Example Root", NOW - timedelta(days=3000), NOW + timedelta(days=20))
    chain = (cert(days=90), cert("Example Issuing", days=900), cert("Old Extra", days=-5))
    endpoint = replace(done(), chain=chain, path=(0, 1), anchor=root)
    verdict = classify(result(endpoint), first_check=False, now=NOW)
    assert verdict.causes == (Cause.ABOUT_TO_EXPIRE,) and verdict.days_left == 20
    assert verdict.findings[0].cert_subject == "CN=Example Root"
    assert endpoint.path_expiry == root.not_after
    assert f.EndpointFacts.from_dict(endpoint.to_dict()) == endpoint
    later = classify(result(endpoint), first_check=False, now=NOW + timedelta(days=21))
    assert later.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert later.findings[0].problem == "root_expired"


def test_a_recorded_order_problem_is_now_a_warning() -> None:
    """Results recorded before path building listed the order as a problem."""
    verdict = classify(result(done(problems=(f.WRONG_ORDER,))), first_check=False, now=NOW)
    assert verdict.status is Status.SECURE and verdict.warnings == ("192.0.2.1: wrong_order",)


def test_a_chain_failure_recommends_what_to_serve() -> None:
    verdict = classify(result(done(problems=(f.VERIFICATION_FAILED,))), first_check=False, now=NOW)
    action = recommended_action(verdict)
    assert action == CAUSE_INFO[Cause.CHAIN_VALIDATION_FAILED].action
    assert "publicly trusted CA" in action and "account manager" not in action
    assert recommended_action(classify(result(done()), first_check=False, now=NOW)) is None


def test_every_cause_has_seed_texts() -> None:
    for cause, info in CAUSE_INFO.items():
        assert info.description and info.action and info.title, cause
    assert set(CAUSE_INFO) == set(Cause)


endpoint_strategy = st.one_of(
    st.sampled_from(
        [f.ERR_POLICY, f.ERR_REFUSED, f.ERR_TIMEOUT, f.ERR_UNREACHABLE, f.ERR_NO_TLS, f.ERR_TLS]
    ).map(failed),
    st.builds(
        done,
        days=st.floats(min_value=-400, max_value=400),
        problems=st.lists(
            st.sampled_from(
                [
                    f.HOSTNAME_MISMATCH,
                    f.CHAIN_INCOMPLETE,
                    f.UNTRUSTED_ROOT,
                    f.WRONG_ORDER,
                    f.REVOKED,
                ]
            ),
            max_size=3,
        ).map(tuple),
    ),
)


@given(st.lists(endpoint_strategy, min_size=0, max_size=4), st.booleans())
def test_verdict_invariants(endpoints: list[f.EndpointFacts], first_check: bool) -> None:
    probed = result(*endpoints, dns_error=None if endpoints else "NXDOMAIN")
    verdict = classify(probed, first_check=first_check, now=NOW)
    assert verdict.causes == ordered(verdict.causes)
    assert verdict.primary_cause == primary(verdict.causes)
    assert (verdict.status is Status.SECURE) == (not verdict.causes)
    enable_failed = any(CAUSE_INFO[c].status is Status.ENABLE_FAILED for c in verdict.causes)
    assert (verdict.status is Status.ENABLE_FAILED) == enable_failed
    assert not enable_failed or first_check
    assert {x.cause for x in verdict.findings} == set(verdict.causes)
    assert Verdict.from_dict(verdict.to_dict()) == verdict
    assert f.ProbeResult.from_dict(probed.to_dict()) == probed


def test_ats_fails_a_certificate_a_client_would_refuse() -> None:
    """ATS wants a trusted, valid certificate for the host as well as TLS 1.2+, forward
    secrecy and SHA-2: an expired, mismatched or untrusted one fails it, about to expire does not."""
    ok = classify(result(done()), first_check=False, now=NOW).ats
    assert ok is not None and ok.passed and ok.reasons == ()
    soon = classify(result(done(days=5)), first_check=False, now=NOW).ats
    assert soon is not None and soon.passed
    broken = classify(result(done(days=-1, problems=(f.HOSTNAME_MISMATCH, f.CHAIN_INCOMPLETE))),
                      first_check=False, now=NOW).ats  # fmt: skip
    assert broken is not None and not broken.passed
    assert broken.reasons == (
        "the certificate has expired",
        "the certificate does not chain to a trusted root",
        "the certificate does not cover the host name",
    )
