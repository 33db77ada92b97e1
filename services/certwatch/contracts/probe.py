"""Probe results: `ProbeObserved` on the observation stream (every probe); `ProbeCompleted`
events on `probe-<domain id>` streams are what the prober appended before observations
(issue 10 B): they stay in the log, decodable, and nothing appends them any more."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from certwatch.contracts.payload import Category, Payload
from certwatch.rules.facts import AtsResult, CertFacts, ChainProblem, EndpointFacts, ProbeResult, TrustedRoot

STREAM = Category("probe")
stream_id = STREAM.stream_id

PROBE_COMPLETED = "ProbeCompleted"


class ProbeCompleted(Payload, frozen=True, kw_only=True):
    """One probe of the domain's host:port for enable generation `generation`.

    `result` is a `rules.facts.ProbeResult` in its JSON form; from version 2 an endpoint may
    carry `chain_ref` (the chain's fingerprints) instead of a chain the domain's previous
    probe already reported (see `prober.compaction`), so it stays JSON until the chain is
    resolved and `ProbeResult.from_dict` reads it.
    """

    TYPE: ClassVar[str] = PROBE_COMPLETED
    VERSION: ClassVar[int] = 2
    domain_id: str
    account_id: str
    host: str
    port: int
    generation: int
    first_check: bool
    result: dict[str, Any]
    prober: str | None = None


class ObservedEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One address of a published probe: `rules.facts.EndpointFacts` with its chain by
    reference (`chain_ref`: the fingerprints, leaf first; empty when none was presented)."""

    ip: str
    phase: str
    error_kind: str | None = None
    error: str | None = None
    connect_ms: float | None = None
    handshake_ms: float | None = None
    tls_version: str | None = None
    cipher: str | None = None
    forward_secret: bool | None = None
    chain_ref: tuple[str, ...] = ()
    problems: tuple[ChainProblem, ...] = ()
    verified: bool | None = None
    verify_error: str | None = None
    earliest_expiry: datetime | None = None
    earliest_expiry_index: int | None = None
    path: tuple[int, ...] | None = None
    anchor: TrustedRoot | None = None
    warnings: tuple[ChainProblem, ...] = ()
    ocsp_status: str | None = None
    ocsp_detail: str | None = None
    ats: AtsResult | None = None

    @classmethod
    def of(cls, e: EndpointFacts) -> ObservedEndpoint:
        return cls(
            ip=e.ip, phase=e.phase, error_kind=e.error_kind, error=e.error, connect_ms=e.connect_ms,
            handshake_ms=e.handshake_ms, tls_version=e.tls_version, cipher=e.cipher,
            forward_secret=e.forward_secret, chain_ref=tuple(c.sha256 for c in e.chain), problems=e.problems,
            verified=e.verified, verify_error=e.verify_error, earliest_expiry=e.earliest_expiry,
            earliest_expiry_index=e.earliest_expiry_index, path=e.path, anchor=e.anchor, warnings=e.warnings,
            ocsp_status=e.ocsp_status, ocsp_detail=e.ocsp_detail, ats=e.ats,
        )  # fmt: skip

    def facts(self, certificates: Mapping[str, CertFacts]) -> EndpointFacts:
        """The rules' endpoint, each referenced certificate taken from `certificates`."""
        return EndpointFacts(
            ip=self.ip, phase=self.phase, error_kind=self.error_kind, error=self.error,
            connect_ms=self.connect_ms, handshake_ms=self.handshake_ms, tls_version=self.tls_version,
            cipher=self.cipher, forward_secret=self.forward_secret,
            chain=tuple(certificates[fp] for fp in self.chain_ref), problems=self.problems,
            verified=self.verified, verify_error=self.verify_error, earliest_expiry=self.earliest_expiry,
            earliest_expiry_index=self.earliest_expiry_index, path=self.path, anchor=self.anchor,
            warnings=self.warnings, ocsp_status=self.ocsp_status, ocsp_detail=self.ocsp_detail, ats=self.ats,
        )  # fmt: skip


class ObservedResult(msgspec.Struct, frozen=True, kw_only=True):
    """A published probe's result: `rules.facts.ProbeResult` with chains by reference."""

    host: str
    port: int
    started_at: datetime
    duration_ms: float = 0.0
    addresses: tuple[str, ...] = ()
    dns_error: str | None = None
    dns_ms: float | None = None
    endpoints: tuple[ObservedEndpoint, ...] = ()

    @classmethod
    def of(cls, r: ProbeResult) -> ObservedResult:
        """`r` with each chain by reference (its certificates go to the store apart)."""
        return cls(
            host=r.host, port=r.port, started_at=r.started_at, duration_ms=r.duration_ms, addresses=r.addresses,
            dns_error=r.dns_error, dns_ms=r.dns_ms, endpoints=tuple(ObservedEndpoint.of(e) for e in r.endpoints),
        )  # fmt: skip

    @property
    def fingerprints(self) -> set[str]:
        """Every certificate this result references."""
        return {fp for e in self.endpoints for fp in e.chain_ref}

    def facts(self, certificates: Mapping[str, CertFacts]) -> ProbeResult | None:
        """The rules' result with every chain resolved (None: a certificate is not there)."""
        if any(fp not in certificates for e in self.endpoints for fp in e.chain_ref):
            return None
        return ProbeResult(
            host=self.host, port=self.port, started_at=self.started_at, duration_ms=self.duration_ms,
            addresses=self.addresses, dns_error=self.dns_error, dns_ms=self.dns_ms,
            endpoints=tuple(e.facts(certificates) for e in self.endpoints),
        )  # fmt: skip


class ProbeObserved(msgspec.Struct, frozen=True, kw_only=True):
    """One probe's outcome, as the prober publishes it on the observation stream
    (`platform.observation_stream`): telemetry, not a fact of record. The classifier turns
    it into observation rows and, when the verdict changes, into `DomainClassified`.

    `result` has every chain by reference; the certificates are in the platform's
    content-addressed store (`platform.certificates`), written by the prober before it
    publishes, so a lost message never leaves a later one unreadable.

    Versions (`v`): 1, with no `v` key, carried `result` as `ProbeResult.to_dict()` with
    each chain emptied and its fingerprints in `chain_ref`, plus `schema`; 2 is this typed
    result. Version 2's keys are a subset of 1's with the same meanings, so `decode` reads a
    version 1 body as version 2 as it stands (the emptied `chain` and `schema` ignored, `v`
    defaulting to 2): the upcast is the identity until a key changes meaning.
    """

    VERSION: ClassVar[int] = 2
    v: int = VERSION
    observation_id: str
    domain_id: str
    account_id: str
    host: str
    port: int
    generation: int
    first_check: bool
    result: ObservedResult
    prober: str | None = None
    traceparent: str | None = None

    def encode(self) -> bytes:
        """The message body (JSON)."""
        return _ENCODER.encode(self)

    @classmethod
    def decode(cls, body: bytes) -> ProbeObserved:
        """A message body of any version, validated (`msgspec.ValidationError` names the field)."""
        return _DECODER.decode(body)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(ProbeObserved)
