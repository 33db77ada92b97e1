"""Judge a presented chain as browsers, OpenSSL 3 and Go do: by its best issuance path.

Servers send certificates in any order, with extras, and sometimes with an expired
cross-certificate beside a path that needs none (Let's Encrypt's DST Root X3 in 2021).
Clients build paths from the leaf through what was presented to a root in their store and
accept the chain when one path is valid, so the verdict here comes from the best path:
valid paths first, then the one whose earliest expiry is latest. What clients tolerate
(order, unneeded certificates) is a warning, not a problem.

Intermediates come only from what the server presented: there is no AIA ("CA Issuers")
fetching. Some browsers fill a gap that way, but OpenSSL, Go, curl, Python, Java and most
API clients do not, so a server that leaves out an intermediate is broken for them and must
be reported as such; fetching would also have every probe call URLs the server chose.

cryptography's verifier gives a trustworthy yes/no (constraints, key usage, policy) but
stops at the first error, while users need to hear about each problem (an expired leaf
*and* a missing intermediate are two things to fix). So paths and problems come from small
functions here, and the verifier is asked about the candidate paths, best first; when it
refuses every one for a reason none of our functions explains, that refusal is reported as
its own problem.
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
from certwatch.prober.hostname import hostname_matches, normalise_host, parse_ip
from certwatch.prober.trust import TrustAnchors
from certwatch.rules.facts import (
    CHAIN_INCOMPLETE,
    HOSTNAME_MISMATCH,
    PATH_TOO_LONG,
    SELF_SIGNED,
    UNNEEDED,
    UNTRUSTED_ROOT,
    VERIFICATION_FAILED,
    WEAK_KEY,
    WEAK_SIGNATURE,
    WRONG_ORDER,
    CertFacts,
    ChainProblem,
    PathCert,
    TrustedRoot,
)
from certwatch.rules.validity import time_problems

_WEAK_HASHES = frozenset({"md2", "md4", "md5", "sha1"})
_MIN_KEY_BITS = {"RSA": 2048, "DSA": 2048, "EC": 256}
MAX_PATH_LENGTH = 8  # certificates on a path, leaf and root included
_MAX_PATHS = 16  # paths considered per chain: bounds the work a hostile chain can cause

END_TRUSTED = "trusted"  # at a root of the store
END_SELF_SIGNED = "self_signed"  # at a self-signed certificate the store does not hold
END_MISSING = "missing_issuer"  # at a certificate whose issuer was neither sent nor trusted
END_TOO_LONG = "too_long"  # at MAX_PATH_LENGTH without reaching a root


@dataclass(frozen=True, slots=True)
class Path:
    """One issuance path: presented certificates (``indices``, leaf first), then
    ``anchor``, the store's root, when the server did not send that root itself."""

    indices: tuple[int, ...]
    anchor: x509.Certificate | None
    end: str  # END_*

    @property
    def trusted(self) -> bool:
        return self.end == END_TRUSTED


@dataclass(frozen=True, slots=True)
class ChainReport:
    problems: tuple[ChainProblem, ...]
    warnings: tuple[ChainProblem, ...]
    verified: bool
    verify_error: str | None
    path: Path  # the best path, which the problems and warnings are about
    anchor: TrustedRoot | None  # the path's store root, when not presented
    issuer: x509.Certificate | None  # the leaf's issuer, for OCSP requests


def _key_ids_match(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """False only when the AKI and the candidate's SKI both exist and differ: a cheap
    filter before the signature check."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return True
    return aki is None or aki == ski


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return (
        cert.issuer == issuer.subject and _key_ids_match(cert, issuer) and is_directly_issued_by(cert, issuer)
    )


@lru_cache(maxsize=4096)
def build_paths(chain: tuple[x509.Certificate, ...], anchors: TrustAnchors) -> tuple[Path, ...]:
    """Every path from the leaf (``chain[0]``) through presented certificates to an end,
    depth first, at most ``_MAX_PATHS`` of them.

    A candidate issuer matches by name and key identifier and must have made the
    signature. A presented copy of a store root counts as that root. Cached: paths depend
    only on the certificates and the roots, not on time, and signature checks are a large
    share of a probe's CPU time.
    """
    paths: list[Path] = []

    def walk(indices: tuple[int, ...]) -> None:
        current = chain[indices[-1]]
        if current.subject == current.issuer and is_directly_issued_by(current, current):
            paths.append(Path(indices, None, END_TRUSTED if anchors.is_anchor(current) else END_SELF_SIGNED))
            return
        if len(indices) >= MAX_PATH_LENGTH:
            paths.append(Path(indices, None, END_TOO_LONG))
            return
        roots = anchors.by_subject.get(current.issuer, ())
        found = False
        for root in roots:
            if _issued_by(current, root):
                found = True
                sent = next((j for j, cert in enumerate(chain) if cert == root), None)
                if sent is None:
                    paths.append(Path(indices, root, END_TRUSTED))
                elif sent not in indices:
                    paths.append(Path((*indices, sent), None, END_TRUSTED))
        for j, candidate in enumerate(chain):
            if len(paths) >= _MAX_PATHS:
                return
            if j not in indices and candidate not in roots and _issued_by(current, candidate):
                found = True
                walk((*indices, j))
        if not found:
            paths.append(Path(indices, None, END_MISSING))

    walk((0,))
    return tuple(paths[:_MAX_PATHS])


@lru_cache(maxsize=1024)
def trusted_root(root: x509.Certificate) -> TrustedRoot:
    return TrustedRoot(
        subject=root.subject.rfc4514_string(),
        not_before=root.not_valid_before_utc,
        not_after=root.not_valid_after_utc,
    )


def path_certs(path: Path, chain: Sequence[CertFacts]) -> tuple[PathCert, ...]:
    certs: list[PathCert] = [(i, chain[i]) for i in path.indices]
    if path.anchor is not None:
        certs.append((None, trusted_root(path.anchor)))
    return tuple(certs)


def _in_time(certs: Sequence[PathCert], now: datetime) -> bool:
    return all(cert.not_before <= now <= cert.not_after for _, cert in certs)


def rank(path: Path, chain: Sequence[CertFacts], now: datetime) -> tuple[bool, bool, bool, datetime, int]:
    """Higher is better: valid (trusted and in time), trusted, in time, then the latest
    earliest expiry, then the shortest."""
    certs = path_certs(path, chain)
    in_time = _in_time(certs, now)
    expiry = min(cert.not_after for _, cert in certs)
    return (path.trusted and in_time, path.trusted, in_time, expiry, -len(certs))


def end_problems(path: Path, chain: Sequence[CertFacts]) -> list[ChainProblem]:
    """Why the path does not reach a trusted root, naming what is missing or untrusted."""
    top = path.indices[-1]
    cert = chain[top]
    if path.end == END_SELF_SIGNED:
        code = SELF_SIGNED if top == 0 else UNTRUSTED_ROOT
        return [ChainProblem(code, f"{cert.subject} is self-signed and not a trusted root", top)]
    if path.end == END_MISSING:
        detail = (
            f"missing intermediate: {cert.issuer}, the issuer of {cert.subject},"
            " was not sent by the server and is not a trusted root"
        )
        return [ChainProblem(CHAIN_INCOMPLETE, detail, top)]
    if path.end == END_TOO_LONG:
        detail = f"no path to a trusted root within {MAX_PATH_LENGTH} certificates"
        return [ChainProblem(PATH_TOO_LONG, detail, top)]
    return []


def path_warnings(path: Path, chain: Sequence[CertFacts], now: datetime) -> list[ChainProblem]:
    """What clients tolerate: the path sent out of order, and certificates it does not use
    (a cross-certificate beside the store's root, an old intermediate, another site's)."""
    warnings: list[ChainProblem] = []
    if list(path.indices) != sorted(path.indices):
        order = " -> ".join(str(i) for i in path.indices)
        detail = (
            f"certificates are sent out of issuance order: the path runs through positions {order}"
            " of the list sent (0 is the first); send the certificate first, then each issuer in turn"
        )
        warnings.append(ChainProblem(WRONG_ORDER, detail, None))
    on_path = {cert.subject for _, cert in path_certs(path, chain)}
    for index, cert in enumerate(chain):
        if index in path.indices:
            continue
        if cert.subject in on_path:
            detail = f"{cert.subject} issued by {cert.issuer} is an alternative (cross-signed) certificate"
            detail += " the path does not use"
        else:
            detail = f"{cert.subject} is not on the issuance path of {chain[0].subject}"
        if now > cert.not_after:
            detail += f"; it expired at {cert.not_after.isoformat()}"
        warnings.append(ChainProblem(UNNEEDED, detail + "; no client needs it", index))
    return warnings


def crypto_problems(chain: Sequence[CertFacts], indices: Sequence[int]) -> list[ChainProblem]:
    """Keys and signature hashes that browsers no longer accept, on the path's certificates."""
    problems: list[ChainProblem] = []
    for index in indices:
        cert = chain[index]
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
    host: str, leaf: x509.Certificate, intermediates: list[x509.Certificate], anchors: TrustAnchors,
    at: datetime,
) -> str | None:  # fmt: skip
    """cryptography's verdict for ``host`` at time ``at``: None when the chain verifies."""
    ip = parse_ip(host)
    try:
        subject = IPAddress(ip) if ip is not None else DNSName(normalise_host(host))
        verifier = PolicyBuilder().store(anchors.store).time(at).build_server_verifier(subject)
        verifier.verify(leaf, intermediates)
    except (VerificationError, ValueError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _best_path(
    host: str, certs: tuple[x509.Certificate, ...], facts: Sequence[CertFacts], anchors: TrustAnchors,
    now: datetime,
) -> tuple[Path, str | None]:  # fmt: skip
    """The best path the verifier accepts, else the best path and the verifier's refusal.

    Valid paths are offered to the verifier best first, each with only its own
    intermediates, so the one accepted is the one the verdict describes.
    """
    ranked = sorted(((rank(p, facts, now), p) for p in build_paths(certs, anchors)), reverse=True,
                    key=lambda ranked_path: ranked_path[0])  # fmt: skip
    error: str | None = None
    for (valid, *_), path in ranked:
        if not valid:
            break  # ranked: no valid path follows
        error = _verify(host, certs[0], [certs[i] for i in path.indices[1:]], anchors, now)
        if error is None:
            return path, None
    if error is None:  # no path of ours is valid: the verifier's word on everything sent
        error = _verify(host, certs[0], list(certs[1:]), anchors, now)
    return ranked[0][1], error


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
    """The problems and warnings of the best path, plus the verifier's overall verdict.

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
    path, error = _best_path(host, certs, facts, anchors, now)
    problems = [
        *time_problems(path_certs(path, facts), now),
        *hostname_problems(host, facts[0]),
        *end_problems(path, facts),
        *crypto_problems(facts, path.indices),
    ]
    if error is not None and not problems:
        problems.append(ChainProblem(VERIFICATION_FAILED, error, None))
    issuer = certs[path.indices[1]] if len(path.indices) > 1 else path.anchor
    anchor = trusted_root(path.anchor) if path.anchor is not None else None
    warnings = path_warnings(path, facts, now)
    return ChainReport(tuple(problems), tuple(warnings), error is None, error, path, anchor, issuer)
