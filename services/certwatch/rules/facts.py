"""What one probe observed, as immutable plain data.

These types live in ``rules``, not ``contracts``: they are the vocabulary the pure rules
compute on (``classify``, ``validity``, ``certwatch check``'s table, the prober's own
checks), with behaviour of their own (``path_certs``, ``path_expiry``). The event that
carries them between services, ``ProbeCompleted``, is a contract
(``contracts.probe``) that embeds their JSON form; the contract depends on these rules,
never the other way round, so a rule never needs to know how a fact travels.

Probe facts are stored inside events and re-read years later, so every field is a plain
JSON type once serialised: datetimes become ISO-8601 UTC strings, tuples become lists,
and a fact that could not be observed is ``None`` (never a placeholder value).
``from_dict`` tolerates missing optional keys so that older events keep loading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec

from certwatch.rules import dates

SCHEMA_VERSION: Final = 1

# Where an endpoint probe stopped. "done" means the TLS handshake completed.
PHASE_POLICY: Final = "policy"
PHASE_TCP: Final = "tcp"
PHASE_TLS: Final = "tls"
PHASE_DONE: Final = "done"

# Why an endpoint probe failed (EndpointFacts.error_kind).
ERR_POLICY: Final = "policy_refused"  # address not public and not explicitly allowed
ERR_REFUSED: Final = "refused"  # TCP connection refused
ERR_TIMEOUT: Final = "timeout"  # no answer within the phase timeout
ERR_UNREACHABLE: Final = "unreachable"  # other network-level failure
ERR_NO_TLS: Final = "no_tls"  # the port answered, but not with TLS (e.g. plain HTTP)
ERR_TLS: Final = "tls_error"  # the peer speaks TLS (or closed) but the handshake failed

# ChainProblem codes besides the time-based ones in ``validity``.
HOSTNAME_MISMATCH: Final = "hostname_mismatch"
CHAIN_INCOMPLETE: Final = "chain_incomplete"  # an issuer is neither presented nor trusted
UNTRUSTED_ROOT: Final = "untrusted_root"  # the chain ends at a root we do not trust
SELF_SIGNED: Final = "self_signed"  # the leaf itself is self-signed
WRONG_ORDER: Final = "wrong_order"  # a warning: the path's certificates were sent out of order
UNNEEDED: Final = "unneeded_certificate"  # a warning: a presented certificate the path does not use
PATH_TOO_LONG: Final = "path_too_long"  # no path to a root within the depth limit
WEAK_KEY: Final = "weak_key"  # RSA/DSA < 2048 or EC < 256 bits
WEAK_SIGNATURE: Final = "weak_signature"  # MD5/SHA-1 signed
VERIFICATION_FAILED: Final = "verification_failed"  # verifier refused for another reason
REVOKED: Final = "revoked"  # OCSP says revoked
UNPARSABLE: Final = "unparsable_certificate"


@dataclass(frozen=True, slots=True)
class CertFacts:
    """One certificate as presented by the server, reduced to what monitoring needs."""

    subject: str
    subject_cn: str | None
    issuer: str
    issuer_cn: str | None
    issuer_org: str | None  # the "brand" shown to users
    serial: str  # lower-case hex
    not_before: datetime
    not_after: datetime
    sha256: str  # lower-case hex fingerprint of the DER encoding
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    key_type: str  # "RSA", "EC", "Ed25519", "Ed448", "DSA" or the key class name
    key_bits: int | None
    signature_algorithm: str | None  # e.g. "rsa_with_sha256", else the dotted OID
    signature_hash: str | None  # e.g. "sha256"; None for Ed25519/Ed448
    is_ca: bool
    self_signed: bool
    ocsp_urls: tuple[str, ...]
    # SHA-256 of the DER SubjectPublicKeyInfo: tells a re-key from a renewal with the same key.
    # None in results recorded before it existed.
    public_key_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "subject_cn": self.subject_cn,
            "issuer": self.issuer,
            "issuer_cn": self.issuer_cn,
            "issuer_org": self.issuer_org,
            "serial": self.serial,
            "not_before": dates.iso(self.not_before),
            "not_after": dates.iso(self.not_after),
            "sha256": self.sha256,
            "dns_names": list(self.dns_names),
            "ip_addresses": list(self.ip_addresses),
            "key_type": self.key_type,
            "key_bits": self.key_bits,
            "signature_algorithm": self.signature_algorithm,
            "signature_hash": self.signature_hash,
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
            "ocsp_urls": list(self.ocsp_urls),
            "public_key_sha256": self.public_key_sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CertFacts:
        return cls(
            subject=data["subject"],
            subject_cn=data.get("subject_cn"),
            issuer=data["issuer"],
            issuer_cn=data.get("issuer_cn"),
            issuer_org=data.get("issuer_org"),
            serial=data["serial"],
            not_before=dates.required(data["not_before"]),
            not_after=dates.required(data["not_after"]),
            sha256=data["sha256"],
            dns_names=tuple(data.get("dns_names", ())),
            ip_addresses=tuple(data.get("ip_addresses", ())),
            key_type=data["key_type"],
            key_bits=data.get("key_bits"),
            signature_algorithm=data.get("signature_algorithm"),
            signature_hash=data.get("signature_hash"),
            is_ca=bool(data.get("is_ca", False)),
            self_signed=bool(data.get("self_signed", False)),
            ocsp_urls=tuple(data.get("ocsp_urls", ())),
            public_key_sha256=data.get("public_key_sha256"),
        )


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """One verification problem; ``cert_index`` points into the presented chain."""

    code: str
    detail: str
    cert_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "cert_index": self.cert_index}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChainProblem:
        return cls(code=data["code"], detail=data["detail"], cert_index=data.get("cert_index"))


@dataclass(frozen=True, slots=True)
class TrustedRoot:
    """The trust store's root that ends a path when the server did not send it.

    Only what the verdict needs (its name and validity): it is recorded in every probe,
    where the full facts of a root would undo most of the chain's compaction.
    """

    subject: str
    not_before: datetime
    not_after: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "not_before": dates.iso(self.not_before),
            "not_after": dates.iso(self.not_after),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustedRoot:
        return cls(
            subject=data["subject"],
            not_before=dates.required(data["not_before"]),
            not_after=dates.required(data["not_after"]),
        )


# A certificate the verdict rests on: its index in the presented chain (None for the
# trust store's root), and the certificate.
PathCert = tuple[int | None, CertFacts | TrustedRoot]


class AtsResult(msgspec.Struct, frozen=True):
    """Apple App Transport Security verdict; ``reasons`` lists every requirement missed.

    A msgspec struct: verdicts (``classify.Verdict``, a contract's payload) carry it.
    """

    passed: bool = msgspec.field(name="pass")
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"pass": self.passed, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AtsResult:
        return cls(passed=bool(data["pass"]), reasons=tuple(data.get("reasons", ())))


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    """Everything learnt from one resolved address of the monitored host."""

    ip: str
    phase: str  # PHASE_*: where the probe stopped ("done" = handshake completed)
    error_kind: str | None = None  # ERR_*
    error: str | None = None
    connect_ms: float | None = None
    handshake_ms: float | None = None
    tls_version: str | None = None
    cipher: str | None = None
    forward_secret: bool | None = None
    chain: tuple[CertFacts, ...] = ()
    problems: tuple[ChainProblem, ...] = ()
    verified: bool | None = None  # overall verdict of cryptography's verifier
    verify_error: str | None = None
    earliest_expiry: datetime | None = None  # over the whole presented chain
    earliest_expiry_index: int | None = None  # which chain entry expires first
    # The issuance path the verdict rests on: indices into ``chain``, leaf first, and the
    # store's root when the server did not send it. None in results recorded before paths
    # were built (the whole presented chain counts then).
    path: tuple[int, ...] | None = None
    anchor: TrustedRoot | None = None
    warnings: tuple[ChainProblem, ...] = ()  # what clients tolerate: order, unneeded certificates
    ocsp_status: str | None = None  # "good" | "revoked" | "unknown"; None when not checked
    ocsp_detail: str | None = None
    ats: AtsResult | None = None

    @property
    def leaf(self) -> CertFacts | None:
        return self.chain[0] if self.chain else None

    def path_certs(self) -> tuple[PathCert, ...]:
        """The certificates the verdict rests on: the path's, then the store's root."""
        indices = range(len(self.chain)) if self.path is None else self.path
        certs: list[PathCert] = [(i, self.chain[i]) for i in indices if i < len(self.chain)]
        if self.anchor is not None:
            certs.append((None, self.anchor))
        return tuple(certs)

    @property
    def path_expiry(self) -> datetime | None:
        """The first ``not_after`` over the path (blackbox_exporter's last chain expiry)."""
        return min((cert.not_after for _, cert in self.path_certs()), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "phase": self.phase,
            "error_kind": self.error_kind,
            "error": self.error,
            "connect_ms": self.connect_ms,
            "handshake_ms": self.handshake_ms,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "forward_secret": self.forward_secret,
            "chain": [c.to_dict() for c in self.chain],
            "problems": [p.to_dict() for p in self.problems],
            "verified": self.verified,
            "verify_error": self.verify_error,
            "earliest_expiry": dates.iso(self.earliest_expiry),
            "earliest_expiry_index": self.earliest_expiry_index,
            "path": None if self.path is None else list(self.path),
            "anchor": self.anchor.to_dict() if self.anchor else None,
            "warnings": [w.to_dict() for w in self.warnings],
            "ocsp_status": self.ocsp_status,
            "ocsp_detail": self.ocsp_detail,
            "ats": self.ats.to_dict() if self.ats else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointFacts:
        ats = data.get("ats")
        return cls(
            ip=data["ip"],
            phase=data["phase"],
            error_kind=data.get("error_kind"),
            error=data.get("error"),
            connect_ms=data.get("connect_ms"),
            handshake_ms=data.get("handshake_ms"),
            tls_version=data.get("tls_version"),
            cipher=data.get("cipher"),
            forward_secret=data.get("forward_secret"),
            chain=tuple(CertFacts.from_dict(c) for c in data.get("chain", ())),
            problems=tuple(ChainProblem.from_dict(p) for p in data.get("problems", ())),
            verified=data.get("verified"),
            verify_error=data.get("verify_error"),
            earliest_expiry=dates.parse(data.get("earliest_expiry")),
            earliest_expiry_index=data.get("earliest_expiry_index"),
            path=None if data.get("path") is None else tuple(data["path"]),
            anchor=TrustedRoot.from_dict(data["anchor"]) if data.get("anchor") else None,
            warnings=tuple(ChainProblem.from_dict(w) for w in data.get("warnings", ())),
            ocsp_status=data.get("ocsp_status"),
            ocsp_detail=data.get("ocsp_detail"),
            ats=AtsResult.from_dict(ats) if ats else None,
        )


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe of host:port over every address the name resolved to."""

    host: str
    port: int
    started_at: datetime
    duration_ms: float
    addresses: tuple[str, ...]
    dns_error: str | None
    dns_ms: float | None
    endpoints: tuple[EndpointFacts, ...]

    @property
    def timed_out(self) -> bool:
        """Nothing answered in time (DNS, or every address): maybe the network, maybe load,
        not yet a fact about the site."""
        if self.dns_error is not None:
            return "in time" in self.dns_error or "timed out" in self.dns_error
        return bool(self.endpoints) and all(e.error_kind == ERR_TIMEOUT for e in self.endpoints)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "host": self.host,
            "port": self.port,
            "started_at": dates.iso(self.started_at),
            "duration_ms": self.duration_ms,
            "addresses": list(self.addresses),
            "dns_error": self.dns_error,
            "dns_ms": self.dns_ms,
            "endpoints": [e.to_dict() for e in self.endpoints],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(
            host=data["host"],
            port=int(data["port"]),
            started_at=dates.required(data["started_at"]),
            duration_ms=float(data.get("duration_ms", 0.0)),
            addresses=tuple(data.get("addresses", ())),
            dns_error=data.get("dns_error"),
            dns_ms=data.get("dns_ms"),
            endpoints=tuple(EndpointFacts.from_dict(e) for e in data.get("endpoints", ())),
        )
