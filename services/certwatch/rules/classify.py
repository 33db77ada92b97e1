"""Turn one probe result into a monitoring status with every cause found.

Pure: the only inputs are the probe facts, whether this is the check made when monitoring
is enabled, and "now". Time-based causes are recomputed from certificate dates and ``now``
rather than taken from the probe, so re-classifying a stored result later is consistent.
Every resolved address counts: one stale node behind round-robin DNS makes the domain
abnormal, and the finding names that address. Certificates count when they are on the path
the probe verified (``EndpointFacts.path_certs``): an expired extra certificate that no
client uses is a warning, not an expired domain.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from certwatch.rules import dates
from certwatch.rules import facts as f
from certwatch.rules.causes import CAUSE_INFO, Cause, Status
from certwatch.rules.precedence import ordered, rank
from certwatch.rules.validity import (
    EXPIRED,
    INTERMEDIATE_EXPIRED,
    INTERMEDIATE_NOT_YET_VALID,
    NOT_YET_VALID,
    ROOT_EXPIRED,
    ROOT_NOT_YET_VALID,
    TIME_CODES,
    time_problems,
)

ABOUT_TO_EXPIRE_DAYS = 30
_DAY_S = 86_400.0

# Connection-level failures: (cause at enable time, cause while monitoring).
_FAILURE_CAUSES: dict[str | None, tuple[Cause, Cause]] = {
    f.ERR_POLICY: (Cause.INVALID_DOMAIN, Cause.NETWORK_CONNECTION_FAILURE),
    f.ERR_REFUSED: (Cause.CONNECTION_FAILURE, Cause.NETWORK_CONNECTION_FAILURE),
    f.ERR_TIMEOUT: (Cause.CONNECTION_FAILURE, Cause.NETWORK_CONNECTION_FAILURE),
    f.ERR_UNREACHABLE: (Cause.CONNECTION_FAILURE, Cause.NETWORK_CONNECTION_FAILURE),
    f.ERR_NO_TLS: (Cause.INVALID_PORT, Cause.NO_SSL_CERTIFICATE),
    f.ERR_TLS: (Cause.INVALID_PORT, Cause.NO_SSL_CERTIFICATE),
}


class Finding(msgspec.Struct, frozen=True):
    """One reason for a cause, naming the address and certificate concerned."""

    cause: Cause
    detail: str
    ip: str | None = None
    problem: str | None = None  # the probe's problem code, when one applies
    cert_subject: str | None = None
    cert_sha256: str | None = None
    action: str | None = None  # what to do about this finding, when more precise than the cause's


class Verdict(msgspec.Struct, frozen=True):
    """The classified status of host:port at ``checked_at``.

    A msgspec struct because it is also the ``verdict`` of the ``DomainClassified`` contract
    (``contracts.status``): one definition for the rule's answer and its wire form, decoded
    and validated by msgspec (fields recorded before they existed take their defaults).
    """

    host: str
    port: int
    checked_at: datetime
    status: Status
    primary_cause: Cause | None = None
    causes: tuple[Cause, ...] = ()  # every cause found, most important first
    findings: tuple[Finding, ...] = ()  # same order as causes
    brand: str | None = None  # issuer organisation of the leaf
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    days_left: int | None = None  # of the earliest-expiring certificate on any verified path
    ats: f.AtsResult | None = None
    warnings: tuple[str, ...] = ()  # what clients tolerate, each naming its address

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (timestamps in UTC, ``Z``), as events store it."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return msgspec.convert(data, cls)


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days remaining (negative once expired): 29 days 23 hours is 29."""
    return math.floor((not_after - now).total_seconds() / _DAY_S)


_FULL_CHAIN = "the certificate first, then each intermediate certificate up to a publicly trusted root"


def _action(problem: f.ChainProblem, cert: f.CertFacts | f.TrustedRoot | None) -> str | None:
    """What someone running the server should do about a chain problem, naming the certificate."""
    code, subject = problem.code, cert.subject if cert else "the certificate"
    if code == f.CHAIN_INCOMPLETE and isinstance(cert, f.CertFacts):
        return (
            f"Serve the full certificate chain ({_FULL_CHAIN}): the intermediate certificate"
            f" {cert.issuer}, which issued {cert.subject}, is missing; get it from your CA."
        )
    if code in (f.SELF_SIGNED, f.UNTRUSTED_ROOT):
        return (
            f"Use a certificate from a publicly trusted CA and serve its full chain ({_FULL_CHAIN}):"
            f" {subject} is not a trusted root."
        )
    if code in (INTERMEDIATE_EXPIRED, INTERMEDIATE_NOT_YET_VALID):
        return (
            f"Replace the intermediate certificate {subject} in the served chain with your CA's current one."
        )
    if code in (ROOT_EXPIRED, ROOT_NOT_YET_VALID):
        return (
            f"Serve a chain from your CA that leads to a currently valid trusted root instead of {subject}."
        )
    if code == NOT_YET_VALID:
        return f"Serve a certificate that is valid now ({subject} is not yet); check the server's clock."
    if code == f.WEAK_KEY:
        return f"Replace {subject} with one using an RSA key of at least 2048 bits or an ECDSA P-256 key."
    if code == f.WEAK_SIGNATURE:
        return f"Replace {subject} with one signed with SHA-256 or better; clients refuse SHA-1 and MD5."
    if code == f.REVOKED:
        return "The certificate was revoked by its CA: install a newly issued one with its full chain."
    return None


def _cert_finding(cause: Cause, endpoint: f.EndpointFacts, problem: f.ChainProblem) -> Finding:
    index = problem.cert_index
    cert: f.CertFacts | f.TrustedRoot | None
    if problem.code in (ROOT_EXPIRED, ROOT_NOT_YET_VALID):
        cert = endpoint.anchor
    else:
        cert = endpoint.chain[index] if index is not None and index < len(endpoint.chain) else None
    return Finding(
        cause=cause,
        detail=f"{endpoint.ip}: {problem.detail}",
        ip=endpoint.ip,
        problem=problem.code,
        cert_subject=cert.subject if cert else None,
        cert_sha256=cert.sha256 if isinstance(cert, f.CertFacts) else None,
        action=_action(problem, cert) if cause is Cause.CHAIN_VALIDATION_FAILED else None,
    )


def _certificate_findings(endpoint: f.EndpointFacts, now: datetime) -> Iterator[Finding]:
    if not endpoint.chain:
        yield Finding(Cause.NO_SSL_CERTIFICATE, f"{endpoint.ip}: no certificate presented", endpoint.ip)
        return
    # Results recorded before paths were built listed the order as a problem: it is a warning.
    problems = [p for p in endpoint.problems if p.code not in TIME_CODES and p.code != f.WRONG_ORDER]
    path = endpoint.path_certs()
    for problem in [*time_problems(path, now), *problems]:
        if problem.code == EXPIRED:
            cause = Cause.EXPIRED
        elif problem.code == f.HOSTNAME_MISMATCH:
            cause = Cause.CERTIFICATE_MISMATCH
        else:
            cause = Cause.CHAIN_VALIDATION_FAILED
        yield _cert_finding(cause, endpoint, problem)
    cert = min((c for _, c in path), key=lambda c: c.not_after)
    left = days_left(cert.not_after, now)
    if cert.not_after >= now and left < ABOUT_TO_EXPIRE_DAYS:
        yield Finding(
            Cause.ABOUT_TO_EXPIRE,
            f"{endpoint.ip}: {cert.subject} expires in {left} days ({dates.iso(cert.not_after)})",
            endpoint.ip,
            None,
            cert.subject,
            cert.sha256 if isinstance(cert, f.CertFacts) else None,
        )


def _warnings(endpoints: tuple[f.EndpointFacts, ...]) -> tuple[str, ...]:
    return tuple(
        f"{e.ip}: {w.detail}"
        for e in endpoints
        for w in (*e.warnings, *(p for p in e.problems if p.code == f.WRONG_ORDER))
    )


def _findings(result: f.ProbeResult, first_check: bool, now: datetime) -> Iterator[Finding]:
    if not result.endpoints:
        cause = Cause.INVALID_IP if first_check else Cause.NETWORK_CONNECTION_FAILURE
        yield Finding(cause, result.dns_error or "the name resolved to no address")
        return
    for endpoint in result.endpoints:
        if endpoint.phase == f.PHASE_DONE:
            yield from _certificate_findings(endpoint, now)
            continue
        at_enable, monitoring = _FAILURE_CAUSES.get(
            endpoint.error_kind, (Cause.CONNECTION_FAILURE, Cause.NETWORK_CONNECTION_FAILURE)
        )
        detail = f"{endpoint.ip}: {endpoint.error or endpoint.error_kind or 'failed'}"
        yield Finding(at_enable if first_check else monitoring, detail, endpoint.ip)


# ATS accepts only a certificate the system trusts for the host and whose validity covers
# now (Apple's "Preventing Insecure Network Connections"): the prober checks the protocol,
# cipher, hashes and key sizes; what the certificate findings say completes it here.
_ATS_CERTIFICATE = {
    Cause.EXPIRED: "the certificate has expired",
    Cause.CHAIN_VALIDATION_FAILED: "the certificate does not chain to a trusted root",
    Cause.CERTIFICATE_MISMATCH: "the certificate does not cover the host name",
}


def _combined_ats(endpoints: tuple[f.EndpointFacts, ...], causes: Sequence[Cause]) -> f.AtsResult | None:
    results = [e.ats for e in endpoints if e.ats is not None]
    if not results:
        return None
    certificate = [_ATS_CERTIFICATE[c] for c in causes if c in _ATS_CERTIFICATE]
    reasons = tuple(dict.fromkeys([*(r for result in results for r in result.reasons), *certificate]))
    return f.AtsResult(passed=all(r.passed for r in results) and not certificate, reasons=reasons)


def classify(result: f.ProbeResult, *, first_check: bool, now: datetime) -> Verdict:
    """Status, primary cause and every finding for one probe result."""
    findings = sorted(_findings(result, first_check, now), key=lambda x: rank(x.cause))
    causes = ordered(x.cause for x in findings)
    if any(CAUSE_INFO[c].status is Status.ENABLE_FAILED for c in causes):
        status = Status.ENABLE_FAILED
    else:
        status = Status.ABNORMAL if causes else Status.SECURE
    with_chain = [e for e in result.endpoints if e.chain]
    leaf = with_chain[0].chain[0] if with_chain else None
    lefts = [days_left(e.path_expiry, now) for e in with_chain if e.path_expiry is not None]
    return Verdict(
        host=result.host,
        port=result.port,
        checked_at=now,
        status=status,
        primary_cause=causes[0] if causes else None,
        causes=causes,
        findings=tuple(findings),
        brand=leaf.issuer_org if leaf else None,
        valid_from=leaf.not_before if leaf else None,
        valid_to=leaf.not_after if leaf else None,
        days_left=min(lefts) if lefts else None,
        ats=_combined_ats(result.endpoints, causes),
        warnings=_warnings(result.endpoints),
    )


def recommended_action(verdict: Verdict) -> str | None:
    """The primary cause's action, made precise by its first finding when it can be."""
    if verdict.primary_cause is None:
        return None
    precise = (x.action for x in verdict.findings if x.cause is verdict.primary_cause and x.action)
    return next(precise, CAUSE_INFO[verdict.primary_cause].action)
