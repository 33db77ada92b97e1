"""Name every problem of a presented chain, and get an overall verdict.

cryptography's verifier gives a trustworthy yes/no but stops at the first error, while
users need to hear about each problem (an expired leaf *and* a missing intermediate are
two things to fix). So problems are found by small functions over the parsed chain, and
the verifier is asked only for the overall verdict; when it refuses for a reason none of
our functions explains, that refusal is reported as its own problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, VerificationError

from certwatch.prober.cert_facts import ParsedCert, is_directly_issued_by
from certwatch.prober.facts import (
    CHAIN_INCOMPLETE,
    HOSTNAME_MISMATCH,
    SELF_SIGNED,
    UNTRUSTED_ROOT,
    VERIFICATION_FAILED,
    WEAK_KEY,
    WEAK_SIGNATURE,
    WRONG_ORDER,
    CertFacts,
    ChainProblem,
)
from certwatch.prober.hostname import hostname_matches, normalise_host, parse_ip
from certwatch.prober.trust import TrustAnchors
from certwatch.prober.validity import time_problems

_WEAK_HASHES = frozenset({"md2", "md4", "md5", "sha1"})
_MIN_KEY_BITS = {"RSA": 2048, "DSA": 2048, "EC": 256}
# The verifier accepts chains in any order; only these problems explain its refusal.
_NOT_REFUSALS = frozenset({WRONG_ORDER})


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """The issuance path from the leaf through presented certificates.

    ``indices`` are positions in the presented chain, leaf first. ``anchor`` is the trusted
    root the path ends at, when it reaches one (presented or from the store).
    """

    indices: tuple[int, ...]
    anchor: x509.Certificate | None
    top_is_self_signed: bool


@dataclass(frozen=True, slots=True)
class ChainReport:
    problems: tuple[ChainProblem, ...]
    verified: bool
    verify_error: str | None
    issuer: x509.Certificate | None  # the leaf's issuer, for OCSP requests


@lru_cache(maxsize=4096)
def build_path(chain: tuple[x509.Certificate, ...], anchors: TrustAnchors) -> PathOutcome:
    """Follow issuers from the leaf, preferring a trusted root, then presented certs.

    Cached: the path depends only on the certificates and the roots, not on time, and the
    signature checks it needs are a quarter of a probe's CPU time.
    """
    indices = [0]
    current = chain[0]
    for _ in range(len(chain)):
        if anchors.is_anchor(current):
            return PathOutcome(tuple(indices), current, True)
        if current.subject == current.issuer and is_directly_issued_by(current, current):
            return PathOutcome(tuple(indices), None, True)
        for root in anchors.by_subject.get(current.issuer, ()):
            if is_directly_issued_by(current, root):
                return PathOutcome(tuple(indices), root, False)
        following = next(
            (
                j
                for j, candidate in enumerate(chain)
                if j not in indices
                and candidate.subject == current.issuer
                and is_directly_issued_by(current, candidate)
            ),
            None,
        )
        if following is None:
            break
        indices.append(following)
        current = chain[following]
    return PathOutcome(tuple(indices), None, False)


def path_problems(path: PathOutcome, chain: Sequence[CertFacts]) -> list[ChainProblem]:
    """Incomplete chain, untrusted or self-signed top, and presentation order."""
    problems: list[ChainProblem] = []
    top = path.indices[-1]
    if path.anchor is None and path.top_is_self_signed:
        code = SELF_SIGNED if top == 0 else UNTRUSTED_ROOT
        detail = f"{chain[top].subject} is self-signed and not a trusted root"
        problems.append(ChainProblem(code, detail, top))
    elif path.anchor is None:
        detail = f"issuer {chain[top].issuer} of {chain[top].subject} was not presented"
        detail += " and is not a trusted root"
        problems.append(ChainProblem(CHAIN_INCOMPLETE, detail, top))
    if path.indices != tuple(range(len(path.indices))):
        order = " -> ".join(str(i) for i in path.indices)
        detail = f"certificates are not presented in issuance order (path {order})"
        problems.append(ChainProblem(WRONG_ORDER, detail, None))
    return problems


def crypto_problems(chain: Sequence[CertFacts]) -> list[ChainProblem]:
    """Keys and signature hashes that browsers no longer accept."""
    problems: list[ChainProblem] = []
    for index, cert in enumerate(chain):
        minimum = _MIN_KEY_BITS.get(cert.key_type)
        if minimum is not None and (cert.key_bits or 0) < minimum:
            detail = f"{cert.subject} has a {cert.key_bits}-bit {cert.key_type} key"
            problems.append(ChainProblem(WEAK_KEY, detail, index))
        if cert.self_signed and index > 0:
            continue  # clients never check a root's own signature
        if cert.signature_hash in _WEAK_HASHES:
            detail = f"{cert.subject} is signed with {cert.signature_hash}"
            problems.append(ChainProblem(WEAK_SIGNATURE, detail, index))
    return problems


def hostname_problems(host: str, leaf: CertFacts) -> list[ChainProblem]:
    if hostname_matches(host, leaf.dns_names, leaf.ip_addresses):
        return []
    names = ", ".join((*leaf.dns_names, *leaf.ip_addresses)) or "no subject alternative names"
    detail = f"{normalise_host(host)} is not covered by the certificate ({names})"
    return [ChainProblem(HOSTNAME_MISMATCH, detail, 0)]


def _verify(
    host: str, chain: tuple[x509.Certificate, ...], anchors: TrustAnchors, at: datetime
) -> str | None:
    """cryptography's verdict for ``host`` at time ``at``: None when the chain verifies."""
    ip = parse_ip(host)
    try:
        subject = IPAddress(ip) if ip is not None else DNSName(normalise_host(host))
        verifier = PolicyBuilder().store(anchors.store).time(at).build_server_verifier(subject)
        verifier.verify(chain[0], list(chain[1:]))
    except (VerificationError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None


def name_key(host: str, leaf: CertFacts) -> tuple[str, str]:
    """What a chain's judgement depends on about ``host``.

    Every host a SAN covers is judged alike (a wildcard certificate serving 100,000
    sub-domains is verified once, not once per name), so the key is the covering SAN;
    a host the certificate does not cover keys by itself (its problem text names it).
    """
    ip = parse_ip(host)
    if ip is not None:
        return ("ip", str(ip))
    name = normalise_host(host)
    for pattern in leaf.dns_names:
        if hostname_matches(name, (pattern,), ()):
            return ("san", pattern)
    return ("host", name)


def time_region(chain: Sequence[CertFacts], now: datetime) -> tuple[int, ...]:
    """Where ``now`` stands against each certificate's validity: -1 before, 0 in, 1 after.

    Every time-based outcome (time problems, and the verifier's own time checks of the
    presented certificates) is the same for two instants with the same region.
    """
    return tuple(-1 if now < c.not_before else (1 if now > c.not_after else 0) for c in chain)


_JUDGEMENTS_MAX = 16_384
_VERDICT_TTL_S = 3600  # bounds how stale the roots' own validity can be in a cached verdict
_judgements: dict[tuple[object, ...], ChainReport] = {}


def clear_cache() -> None:
    _judgements.clear()


def check_chain(host: str, parsed: Sequence[ParsedCert], anchors: TrustAnchors, now: datetime) -> ChainReport:
    """All problems of the presented chain, plus the verifier's overall verdict.

    Cached by (certificates, roots, covering SAN or host, validity region of ``now``, hour):
    a probe of a chain already judged costs a dictionary lookup, and the answer is the one
    a fresh judgement would give (see ``name_key`` and ``time_region``).
    """
    certs = tuple(p.cert for p in parsed)
    facts = [p.facts for p in parsed]
    key = (certs, anchors, name_key(host, facts[0]), time_region(facts, now),
           int(now.timestamp()) // _VERDICT_TTL_S)  # fmt: skip
    report = _judgements.get(key)
    if report is None:
        report = _judge(host, certs, facts, anchors, now)
        if len(_judgements) >= _JUDGEMENTS_MAX:
            _judgements.clear()
        _judgements[key] = report
    return report


def _judge(
    host: str, certs: tuple[x509.Certificate, ...], facts: list[CertFacts], anchors: TrustAnchors,
    now: datetime,
) -> ChainReport:  # fmt: skip
    path = build_path(certs, anchors)
    problems = [
        *time_problems(facts, now),
        *hostname_problems(host, facts[0]),
        *path_problems(path, facts),
        *crypto_problems(facts),
    ]
    error = _verify(host, certs, anchors, now)
    if error is not None and all(p.code in _NOT_REFUSALS for p in problems):
        problems.append(ChainProblem(VERIFICATION_FAILED, error, None))
    if len(path.indices) > 1:
        issuer: x509.Certificate | None = certs[path.indices[1]]
    elif path.anchor is not None and not path.top_is_self_signed:
        issuer = path.anchor
    else:
        issuer = None
    return ChainReport(tuple(problems), error is None, error, issuer)
