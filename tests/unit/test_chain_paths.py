"""Path building over generated PKIs: the verdict follows the best path a client builds.

Each test presents certificates as a server might (in any order, with extras, with a
cross-certificate) and checks the path chosen, the problems, the warnings, and the verdict
the classifier gives the resulting facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certwatch.prober.cert_facts import parse_der
from certwatch.prober.chain_checks import _MAX_PATHS, ChainReport, build_paths, check_chain
from certwatch.prober.trust import TrustAnchors, load_anchors
from certwatch.rules import facts as f
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict, classify, days_left, recommended_action
from certwatch.rules.validity import INTERMEDIATE_EXPIRED, ROOT_EXPIRED, earliest_expiry
from tests.support.pki import Issued, TestPKI, issue, make_key

HOST = "www.example.test"
NOW = datetime.now(UTC)


class World:
    """A PKI whose root is trusted, plus a Let's Encrypt-like pair: a new root (trusted)
    cross-signed by an old one whose own validity the tests choose."""

    def __init__(self, pki: TestPKI) -> None:
        self.pki = pki
        self.new_root = issue("New Root", ca=True, org="New CA", key=make_key(slot="new-root"))
        self.new_int = issue("New Issuing", issuer=self.new_root, ca=True, key=make_key(slot="new-int"))

    def old_root(self, *, expired: bool) -> Issued:
        end = NOW - timedelta(days=1) if expired else NOW + timedelta(days=900)
        return issue("Old Root", ca=True, org="Old CA", key=make_key(slot="old-root"),
                     not_before=NOW - timedelta(days=3000), not_after=end)  # fmt: skip

    def cross(self, old_root: Issued, *, expired: bool) -> Issued:
        """The new root's name and key, signed by the old root."""
        end = NOW - timedelta(days=2) if expired else NOW + timedelta(days=600)
        return issue("New Root", issuer=old_root, ca=True, org="New CA", key=self.new_root.key,
                     not_before=NOW - timedelta(days=1000), not_after=end)  # fmt: skip

    def anchors(self, *roots: Issued) -> TrustAnchors:
        name = "-".join(r.cert.subject.rfc4514_string() + str(r.cert.serial_number) for r in roots)
        return load_anchors(self.pki.write(f"store-{abs(hash(name))}.pem", b"".join(r.pem for r in roots)))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with TestPKI(label="Paths") as pki:
        yield World(pki)


def judge(anchors: TrustAnchors, *certs: Issued, host: str = HOST) -> tuple[ChainReport, f.EndpointFacts]:
    """The chain's report, and the endpoint facts a probe would record from it."""
    parsed = [parse_der(c.cert.public_bytes(Encoding.DER)) for c in certs]
    report = check_chain(host, parsed, anchors, NOW)
    facts = tuple(p.facts for p in parsed)
    expiry = earliest_expiry(facts)
    assert expiry is not None
    endpoint = f.EndpointFacts(
        ip="192.0.2.1", phase=f.PHASE_DONE, tls_version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256",
        forward_secret=True, chain=facts, problems=report.problems, verified=report.verified,
        verify_error=report.verify_error, earliest_expiry=expiry[0], earliest_expiry_index=expiry[1],
        path=report.path.indices, anchor=report.anchor, warnings=report.warnings,
    )  # fmt: skip
    return report, f.EndpointFacts.from_dict(endpoint.to_dict())


def verdict_of(endpoint: f.EndpointFacts) -> Verdict:
    probed = f.ProbeResult(HOST, 443, NOW, 1.0, (endpoint.ip,), None, 0.1, (endpoint,))
    return classify(probed, first_check=False, now=NOW)


def codes(problems: tuple[f.ChainProblem, ...]) -> list[str]:
    return [p.code for p in problems]


def test_a_chain_in_order_has_one_path_and_no_warnings(world: World) -> None:
    pki = world.pki
    leaf = pki.leaf(HOST)
    report, endpoint = judge(world.anchors(pki.root), leaf, pki.intermediate)
    assert report.verified and report.problems == () and report.warnings == ()
    assert endpoint.path == (0, 1) and endpoint.anchor is not None
    assert endpoint.anchor.subject == pki.root.cert.subject.rfc4514_string()
    ends = (leaf.cert.not_valid_after_utc, pki.intermediate.cert.not_valid_after_utc,
            pki.root.cert.not_valid_after_utc)  # fmt: skip
    assert endpoint.path_expiry == min(ends)
    assert verdict_of(endpoint).status is Status.SECURE


def test_leaf_root_intermediate_is_secure_with_an_order_warning(world: World) -> None:
    pki = world.pki
    report, endpoint = judge(world.anchors(pki.root), pki.leaf(HOST), pki.root, pki.intermediate)
    assert report.verified and report.problems == ()
    assert endpoint.path == (0, 2, 1) and endpoint.anchor is None  # the root sent is the one trusted
    assert codes(report.warnings) == [f.WRONG_ORDER]
    assert "0 -> 2 -> 1" in report.warnings[0].detail
    verdict = verdict_of(endpoint)
    assert verdict.status is Status.SECURE and verdict.causes == ()
    assert verdict.warnings == (f"192.0.2.1: {report.warnings[0].detail}",)


def test_an_unneeded_expired_certificate_is_a_warning_not_an_expired_domain(world: World) -> None:
    pki = world.pki
    stray = issue("Stray", dns=("stray.example.test",), key=make_key(slot="stray"),
                  not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=5))  # fmt: skip
    leaf = pki.leaf(HOST)
    report, endpoint = judge(world.anchors(pki.root), leaf, pki.intermediate, stray)
    assert report.verified and report.problems == ()
    assert endpoint.path == (0, 1)
    [warning] = report.warnings
    assert (warning.code, warning.cert_index) == (f.UNNEEDED, 2)
    assert "CN=Stray" in warning.detail and "expired" in warning.detail
    assert endpoint.earliest_expiry_index == 2  # the presented list's own earliest expiry, still reported
    assert endpoint.path_expiry is not None and endpoint.earliest_expiry is not None
    assert endpoint.path_expiry > NOW > endpoint.earliest_expiry
    verdict = verdict_of(endpoint)
    assert verdict.status is Status.SECURE and Cause.EXPIRED not in verdict.causes
    assert verdict.days_left == days_left(leaf.cert.not_valid_after_utc, NOW)


@pytest.mark.parametrize(
    ("cross_expired", "old_root_expired"),
    [(True, False), (False, True)],
    ids=["expired-cross-certificate", "expired-old-root"],
)
def test_a_cross_certificate_beside_a_trusted_root_is_a_warning(
    world: World, cross_expired: bool, old_root_expired: bool
) -> None:
    """Let's Encrypt in 2021: leaf, R3, ISRG Root X1 cross-signed by the expiring DST Root X3."""
    old = world.old_root(expired=old_root_expired)
    cross = world.cross(old, expired=cross_expired)
    leaf = issue(HOST, issuer=world.new_int, dns=(HOST,))
    report, endpoint = judge(world.anchors(world.new_root, old), leaf, world.new_int, cross)
    assert report.verified and report.problems == ()
    assert endpoint.path == (0, 1) and endpoint.anchor is not None
    assert endpoint.anchor.subject == "CN=New Root,O=New CA"
    [warning] = report.warnings
    assert (warning.code, warning.cert_index) == (f.UNNEEDED, 2)
    assert "cross-signed" in warning.detail and ("expired" in warning.detail) is cross_expired
    assert verdict_of(endpoint).status is Status.SECURE


def test_without_the_new_root_the_path_through_the_expired_old_root_fails(world: World) -> None:
    """What old clients saw in 2021: the only path ends at a root that has expired."""
    old = world.old_root(expired=True)
    leaf = issue(HOST, issuer=world.new_int, dns=(HOST,))
    report, endpoint = judge(world.anchors(old), leaf, world.new_int, world.cross(old, expired=False))
    assert not report.verified and codes(report.problems) == [ROOT_EXPIRED]
    assert endpoint.path == (0, 1, 2) and endpoint.anchor is not None
    verdict = verdict_of(endpoint)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    assert verdict.findings[0].cert_subject == "CN=Old Root,O=Old CA"


def test_among_valid_paths_the_latest_earliest_expiry_wins(world: World) -> None:
    """A server sending both an old and a renewed copy of its intermediate (same name and key)."""
    pki = world.pki
    soon, later, expired = (
        issue("Paths Intermediate", issuer=pki.root, ca=True, org="Paths Issuing", key=pki.intermediate.key,
              not_before=NOW - timedelta(days=start), not_after=NOW + timedelta(days=days))
        for days, start in ((40, 30), (900, 30), (-3, 500))
    )  # fmt: skip
    leaf = pki.leaf(HOST, not_after=NOW + timedelta(days=60))
    report, endpoint = judge(world.anchors(pki.root), leaf, expired, soon, later)
    assert report.verified and report.problems == ()
    assert endpoint.path == (0, 3)
    assert [w.cert_index for w in report.warnings] == [1, 2]
    assert verdict_of(endpoint).days_left in (59, 60)


def test_a_missing_intermediate_is_named_in_the_finding_and_the_action(world: World) -> None:
    pki = world.pki
    report, endpoint = judge(world.anchors(pki.root), pki.leaf(HOST))
    assert not report.verified and codes(report.problems) == [f.CHAIN_INCOMPLETE]
    missing = pki.intermediate.cert.subject.rfc4514_string()
    assert missing in report.problems[0].detail
    verdict = verdict_of(endpoint)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,)
    action = recommended_action(verdict)
    assert action is not None and missing in action and "full certificate chain" in action
    assert "account manager" not in action


def test_an_extra_certificate_does_not_hide_a_missing_intermediate(world: World) -> None:
    pki = world.pki
    stray = issue("Stray CA", ca=True, key=make_key(slot="stray-ca"))
    report, _ = judge(world.anchors(pki.root), pki.leaf(HOST), stray)
    assert codes(report.problems) == [f.CHAIN_INCOMPLETE] and codes(report.warnings) == [f.UNNEEDED]


def test_an_untrusted_root_and_a_self_signed_leaf_fail(world: World) -> None:
    pki = world.pki
    with TestPKI(label="Elsewhere Paths") as other:
        report, endpoint = judge(world.anchors(pki.root), other.leaf(HOST), other.intermediate, other.root)
    assert not report.verified and codes(report.problems) == [f.UNTRUSTED_ROOT]
    action = recommended_action(verdict_of(endpoint))
    assert action is not None and "publicly trusted CA" in action
    mine = issue(HOST, dns=(HOST,), key=make_key(slot="self"))
    report, _ = judge(world.anchors(pki.root), mine)
    assert codes(report.problems) == [f.SELF_SIGNED]


def test_an_expired_intermediate_on_every_path_fails(world: World) -> None:
    pki = world.pki
    old = issue("Paths Old Issuing", issuer=pki.root, ca=True, key=make_key(slot="paths-old"),
                not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=10))  # fmt: skip
    report, endpoint = judge(world.anchors(pki.root), pki.leaf(HOST, issuer=old), old)
    assert not report.verified and codes(report.problems) == [INTERMEDIATE_EXPIRED]
    verdict = verdict_of(endpoint)
    assert verdict.causes == (Cause.CHAIN_VALIDATION_FAILED,) and verdict.days_left == -11
    action = recommended_action(verdict)
    assert action is not None and "CN=Paths Old Issuing" in action


def test_path_building_is_bounded_and_ends_on_loops(world: World) -> None:
    pki = world.pki
    copies = [issue("Paths Intermediate", issuer=pki.root, ca=True, org="Paths Issuing",
                    key=pki.intermediate.key) for _ in range(_MAX_PATHS + 4)]  # fmt: skip
    leaf = pki.leaf(HOST)
    anchors = world.anchors(pki.root)
    assert len(build_paths((leaf.cert, *(c.cert for c in copies)), anchors)) == _MAX_PATHS
    report, _ = judge(anchors, leaf, *copies)
    assert report.verified
    # A and B cross-sign each other and neither is trusted: the walk stops.
    a_key, b_key = make_key(slot="loop-a"), make_key(slot="loop-b")
    b_self = issue("Loop B", ca=True, key=b_key)
    a = issue("Loop A", issuer=b_self, ca=True, key=a_key)
    b = issue("Loop B", issuer=a, ca=True, key=b_key)
    report, _ = judge(anchors, issue(HOST, issuer=a, dns=(HOST,)), b, a)
    assert not report.verified and codes(report.problems) == [f.CHAIN_INCOMPLETE]
