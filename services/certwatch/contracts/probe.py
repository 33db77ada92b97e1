"""Probe results: `ProbeObserved` on the observation stream (every probe); `ProbeCompleted`
events on `probe-<domain id>` streams are what the prober appended before observations
(issue 10 B): they stay in the log, decodable, and nothing appends them any more."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from certwatch.contracts.payload import Category, Payload

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


class ProbeObserved(msgspec.Struct, frozen=True, kw_only=True):
    """One probe's outcome, as the prober publishes it on the observation stream
    (`platform.observation_stream`): telemetry, not a fact of record. The classifier turns
    it into observation rows and, when the verdict changes, into `DomainClassified`.

    `result` is a `rules.facts.ProbeResult` in its JSON form with every chain by reference
    (`chain_ref`: the fingerprints, leaf first); the certificates are in the platform's
    content-addressed store (`platform.certificates`), written by the prober before it
    publishes, so a lost message never leaves a later one unreadable.
    """

    observation_id: str
    domain_id: str
    account_id: str
    host: str
    port: int
    generation: int
    first_check: bool
    result: dict[str, Any]
    prober: str | None = None
    traceparent: str | None = None

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    @classmethod
    def from_data(cls, data: Any) -> ProbeObserved:
        return msgspec.convert(data, cls)
