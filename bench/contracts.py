"""Decode + validate cost per event: the contracts' msgspec structs vs the dicts they replaced.

Run alone: `.venv/bin/python -m bench.contracts` (from the repo root; imports tests.support).

The event is a real `DomainClassified` (the most read payload: five projections consume
it): a probe result of two addresses (one expired chain, one refused) classified by
`rules.classify`, so the verdict has findings, ATS reasons and per-address verdicts. Every
variant ends with the fields a projection reads (status, causes, checked_at as a datetime,
generation, ids, days left):
- reference: orjson → dict, then those fields by key (no validation at all; `checked_at`
  parsed by hand, as a projection passing it on as a datetime would);
- msgspec struct from JSON bytes (what a consumer off the bus would do);
- msgspec struct from the dict (what the event log hands over: psycopg decodes jsonb with
  orjson already), i.e. `DomainClassified.of(event)`;
- frozen dataclasses built by hand-written `from_dict` (the pattern the verdict had before),
  from the dict: only as much validation as the constructors do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from bench._common import Row, cli, save
from certwatch.contracts.status import DomainClassified
from certwatch.rules.classify import classify, recommended_action
from certwatch.rules.facts import ERR_REFUSED, PHASE_TCP, EndpointFacts
from tests.support.probe_results import NOW, cert, intermediate, result, served

BENCH = "contracts"
ROUNDS = 5
N = 20_000


def _event_data() -> dict[str, Any]:
    expired = cert(days=-3)
    refused = EndpointFacts(ip="192.0.2.2", phase=PHASE_TCP, error_kind=ERR_REFUSED, error="refused")
    probe = result(served("192.0.2.1", expired, intermediate()), refused)
    verdict = classify(probe, first_check=False, now=NOW)
    endpoints = [
        {"ip": e.ip, "status": verdict.status.value, "primary_cause": None, "causes": [], "phase": e.phase,
         "error": e.error, "tls_version": e.tls_version, "cipher": e.cipher,
         "leaf_sha256": e.leaf.sha256 if e.leaf else None, "ats": e.ats.to_dict() if e.ats else None}
        for e in probe.endpoints
    ]  # fmt: skip
    return {
        "domain_id": str(uuid.uuid4()), "account_id": str(uuid.uuid4()), "generation": 3,
        "first_check": False, "verdict": verdict.to_dict(), "recommended_action": recommended_action(verdict),
        "endpoints": endpoints,
    }  # fmt: skip


def _fields_of_dict(data: dict[str, Any]) -> tuple[object, ...]:
    verdict = data["verdict"]
    checked = datetime.fromisoformat(verdict["checked_at"])
    return (data["domain_id"], data["account_id"], data["generation"], verdict["status"],
            verdict.get("causes", []), checked, verdict.get("days_left"))  # fmt: skip


def _fields_of_struct(e: Any) -> tuple[object, ...]:
    v = e.verdict
    return (e.domain_id, e.account_id, e.generation, v.status, v.causes, v.checked_at, v.days_left)


# The frozen-dataclass alternative, written the way `Verdict.from_dict` was.
@dataclass(frozen=True, slots=True)
class _Finding:
    cause: str
    detail: str
    ip: str | None
    problem: str | None
    cert_subject: str | None
    cert_sha256: str | None
    action: str | None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Finding:
        return cls(d["cause"], d["detail"], d.get("ip"), d.get("problem"), d.get("cert_subject"),
                   d.get("cert_sha256"), d.get("action"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Verdict:
    host: str
    port: int
    checked_at: datetime
    status: str
    primary_cause: str | None
    causes: tuple[str, ...]
    findings: tuple[_Finding, ...]
    brand: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    days_left: int | None
    ats: tuple[bool, tuple[str, ...]] | None
    warnings: tuple[str, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Verdict:
        def dt(v: str | None) -> datetime | None:
            return None if v is None else datetime.fromisoformat(v)

        ats = d.get("ats")
        return cls(
            d["host"], int(d["port"]), datetime.fromisoformat(d["checked_at"]), d["status"],
            d.get("primary_cause"), tuple(d.get("causes", ())),
            tuple(_Finding.from_dict(x) for x in d.get("findings", ())), d.get("brand"),
            dt(d.get("valid_from")), dt(d.get("valid_to")), d.get("days_left"),
            (bool(ats["pass"]), tuple(ats["reasons"])) if ats else None, tuple(d.get("warnings", ())),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Classified:
    domain_id: str
    account_id: str
    generation: int
    first_check: bool
    verdict: _Verdict
    recommended_action: str | None
    endpoints: tuple[dict[str, Any], ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Classified:
        return cls(d["domain_id"], d["account_id"], int(d["generation"]), bool(d["first_check"]),
                   _Verdict.from_dict(d["verdict"]), d.get("recommended_action"),
                   tuple(d.get("endpoints", ())))  # fmt: skip


def _per_event_us(fn: Callable[[], object]) -> float:
    """Best of `ROUNDS` rounds of `N` calls (the machine is shared), in µs a call."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(N):
            fn()
        best = min(best, time.perf_counter() - started)
    return best / N * 1e6


async def run() -> list[Row]:
    import msgspec

    data = _event_data()
    raw = orjson.dumps(data)
    as_struct = msgspec.json.Decoder(DomainClassified)
    # the same answer from every variant before anything is timed
    expected = _fields_of_struct(msgspec.convert(data, DomainClassified))
    assert _fields_of_struct(as_struct.decode(raw)) == expected
    assert _fields_of_dict(orjson.loads(raw))[:3] == expected[:3]
    assert _Classified.from_dict(orjson.loads(raw)).verdict.days_left == expected[-1]

    loaded = orjson.loads(raw)
    timings = {
        "dict_json": _per_event_us(lambda: _fields_of_dict(orjson.loads(raw))),
        "struct_json": _per_event_us(lambda: _fields_of_struct(as_struct.decode(raw))),
        "dict": _per_event_us(lambda: _fields_of_dict(loaded)),
        "struct_dict": _per_event_us(lambda: _fields_of_struct(msgspec.convert(loaded, DomainClassified))),
        "dataclass_dict": _per_event_us(lambda: _fields_of_struct(_Classified.from_dict(loaded))),
    }
    note = f"DomainClassified, {len(raw)} B JSON; best of {ROUNDS} x {N:,}"
    by_key = "the dict's fields by key (no validation)"
    rows = [
        Row(BENCH, "from JSON bytes: msgspec Struct(frozen), validated", timings["struct_json"], "µs/event",
            f"orjson.loads + {by_key}", timings["dict_json"], note=note),
        Row(BENCH, "from the log's dict: msgspec Struct(frozen) (.of), validated", timings["struct_dict"],
            "µs/event", by_key, timings["dict"], note=note),
        Row(BENCH, "from the log's dict: frozen dataclasses, hand-written from_dict", timings["dataclass_dict"],
            "µs/event", by_key, timings["dict"], note=note),
    ]  # fmt: skip
    save(BENCH, rows, {"payload_bytes": len(raw), "rounds": ROUNDS, "calls": N,
                       "us_per_event": {k: round(v, 3) for k, v in timings.items()}})  # fmt: skip
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
