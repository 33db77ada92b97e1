"""Probe results, appended by the prober on `probe-<domain id>` streams; the classifier reads them."""

from __future__ import annotations

from typing import Any, ClassVar

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
