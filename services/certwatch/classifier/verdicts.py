"""Observations → verdicts: every probe classified, a `DomainClassified` only on change.

The prober publishes each probe as a `ProbeObserved` on the observation stream. A batch of
them is handled in one transaction: the domains' verdict states and served chains are
loaded and locked, each probe is classified (`rules.classify`) in probe order, its
per-address outcome becomes observation rows (`platform.observations`), and the event log
gets a `DomainClassified` only when the verdict changed (see `must_append`), plus the
chain and ownership events `change_events` finds. Event ids derive from the observation's
id, and a probe no newer than the domain's last one (a redelivery, or an overtaken
duplicate) is dropped whole: however often an observation arrives, its events are
appended once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import msgspec
import orjson

from certwatch.classifier import change_events
from certwatch.classifier.metrics import VerdictMetrics
from certwatch.classifier.observation import Observation as Serving
from certwatch.contracts import status as sc
from certwatch.contracts.probe import ProbeObserved
from certwatch.platform import certificates, observations, telemetry
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import NewEvent, stable_id
from certwatch.platform.observation_stream import Incoming
from certwatch.rules.causes import Status
from certwatch.rules.classify import Verdict, classify, recommended_action
from certwatch.rules.facts import CertFacts, ProbeResult

log = logging.getLogger(__name__)

# A non-SECURE verdict is appended again (with its `streak`) until it has been seen this
# many times in a row, so consumers can wait for N consecutive failures (N <= this).
STREAK_REPEATS = 5
# Days left at which a verdict is appended though nothing else changed: the thresholds
# alerts and reports count down to.
DAY_MARKS = (60, 45, 30, 14, 7, 3, 1, 0)
_CACHE_CERTS = 20_000


@dataclass(frozen=True, slots=True)
class VerdictState:
    """What the last observed probe of a domain decided."""

    checked_at: datetime
    generation: int
    key: bytes  # `verdict_key` of the last verdict
    streak: int  # consecutive probes with that key, counting the last


def _day_mark(days_left: int | None) -> int:
    return -1 if days_left is None else sum(1 for mark in DAY_MARKS if days_left <= mark)


def verdict_key(classified: sc.DomainClassified) -> bytes:
    """What makes two verdicts the same: everything but the time, days left counted only
    by the marks crossed, and the addresses' outcomes without their error texts."""
    verdict = msgspec.to_builtins(classified.verdict)
    verdict.pop("checked_at")
    verdict["days_left"] = _day_mark(classified.verdict.days_left)
    endpoints = [
        (e.ip, e.status, e.primary_cause, e.causes, e.phase, e.tls_version, e.cipher, e.leaf_sha256)
        for e in classified.endpoints
    ]  # fmt: skip
    body = orjson.dumps([verdict, classified.recommended_action, endpoints], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).digest()[:16]


def must_append(
    previous: VerdictState | None, classified: sc.DomainClassified, key: bytes, streak: int
) -> bool:
    """A verdict is a fact of record when it is a domain's first, an enable check, for a
    new enable generation, different from the last, or a problem seen again up to
    `STREAK_REPEATS` times; a stable verdict adds nothing."""
    if previous is None or classified.first_check or previous.generation != classified.generation:
        return True
    if key != previous.key:
        return True
    return classified.verdict.status is not Status.SECURE and streak <= STREAK_REPEATS


def _per_address(result: ProbeResult, first_check: bool, whole: Verdict) -> tuple[sc.AddressVerdict, ...]:
    """Each address classified on its own: the report's IP content names the stale node.
    A probe of one address is that address alone: its verdict is `whole`, not redone."""
    summaries = []
    for endpoint in result.endpoints:
        alone = whole if len(result.endpoints) == 1 else classify(
            replace(result, endpoints=(endpoint,)), first_check=first_check, now=result.started_at
        )  # fmt: skip
        summaries.append(sc.AddressVerdict(
            ip=endpoint.ip, status=alone.status, primary_cause=alone.primary_cause, causes=alone.causes,
            phase=endpoint.phase, error=endpoint.error, tls_version=endpoint.tls_version,
            cipher=endpoint.cipher, leaf_sha256=endpoint.leaf.sha256 if endpoint.leaf else None,
            ats=endpoint.ats,
        ))  # fmt: skip
    return tuple(summaries)


def classified(probe: ProbeObserved, result: ProbeResult, streak: int = 1) -> sc.DomainClassified:
    verdict: Verdict = classify(result, first_check=probe.first_check, now=result.started_at)
    return sc.DomainClassified(
        domain_id=probe.domain_id, account_id=probe.account_id, generation=probe.generation,
        first_check=probe.first_check, verdict=verdict, recommended_action=recommended_action(verdict),
        endpoints=_per_address(result, probe.first_check, verdict), streak=streak,
    )  # fmt: skip


def observation_rows(
    result: ProbeResult, verdict: sc.DomainClassified, domain_id: str
) -> list[observations.Observation]:
    """One row per address (one with no address when the name resolved to nothing)."""
    by_ip = {e.ip: e for e in verdict.endpoints}
    if not result.endpoints:
        v = verdict.verdict
        return [observations.Observation(
            observed_at=result.started_at, domain_id=domain_id, ip=None, phase="dns", status=v.status.value,
            causes=tuple(c.value for c in v.causes), primary_cause=v.primary_cause.value if v.primary_cause else None,
            detail=result.dns_error or "",
        )]  # fmt: skip
    rows = []
    for endpoint in result.endpoints:
        alone = by_ip[endpoint.ip]
        chain = tuple(c.sha256 for c in endpoint.chain)
        rows.append(observations.Observation(
            observed_at=result.started_at, domain_id=domain_id, ip=endpoint.ip, phase=endpoint.phase,
            status=alone.status.value, causes=tuple(c.value for c in alone.causes),
            primary_cause=alone.primary_cause.value if alone.primary_cause else None,
            error_kind=endpoint.error_kind, tls_version=endpoint.tls_version,
            connect_ms=endpoint.connect_ms, handshake_ms=endpoint.handshake_ms,
            chain_id=certificates.chain_id(chain) if chain else certificates.NO_CHAIN,
            detail=endpoint.error or "",
        ))  # fmt: skip
    return rows


class CertificateCache:
    """Certificate facts by fingerprint, from the platform's store, the recent ones kept in
    memory already parsed: a stable domain's chain is read from PostgreSQL and parsed once,
    not once a probe."""

    def __init__(self, size: int = _CACHE_CERTS) -> None:
        self._size = size
        self._facts: OrderedDict[str, CertFacts] = OrderedDict()

    async def facts(self, conn: Conn, fingerprints: set[str]) -> dict[str, CertFacts]:
        missing = fingerprints - self._facts.keys()
        if missing:
            for fp, cert in (await certificates.get_certificates(conn, missing)).items():
                self._facts[fp] = CertFacts.from_dict(dict(cert.facts))
        found = {}
        for fp in fingerprints:
            if fp in self._facts:
                self._facts.move_to_end(fp)
                found[fp] = self._facts[fp]
        while len(self._facts) > self._size:
            self._facts.popitem(last=False)
        return found


async def load_states(conn: Conn, domain_ids: Sequence[str]) -> dict[str, VerdictState]:
    cur = await conn.execute(
        "SELECT domain_id::text, checked_at, generation, verdict_key, streak FROM classifier_verdicts"
        " WHERE domain_id = ANY(%b::uuid[]) ORDER BY domain_id FOR UPDATE",
        (list(domain_ids),),
    )
    return {r[0]: VerdictState(r[1], r[2], bytes(r[3]), r[4]) for r in await cur.fetchall()}


async def save_states(conn: Conn, states: dict[str, VerdictState]) -> None:
    if not states:
        return
    ids = sorted(states)
    await conn.execute(
        "INSERT INTO classifier_verdicts (domain_id, checked_at, generation, verdict_key, streak)"
        " SELECT * FROM unnest(%b::uuid[], %b::timestamptz[], %b::int[], %b::bytea[], %b::int[])"
        " ON CONFLICT (domain_id) DO UPDATE SET checked_at = excluded.checked_at,"
        " generation = excluded.generation, verdict_key = excluded.verdict_key, streak = excluded.streak",
        (ids, [states[d].checked_at for d in ids], [states[d].generation for d in ids],
         [states[d].key for d in ids], [states[d].streak for d in ids]),
    )  # fmt: skip


def _decode(message: Incoming) -> ProbeObserved | None:
    try:
        return ProbeObserved.decode(message.body)
    except msgspec.DecodeError as exc:  # a poison message must not block the rest
        log.error("observation %s is not a ProbeObserved: dropped", message.observation_id,
                  extra={"error": str(exc)})  # fmt: skip
        return None


@dataclass(frozen=True, slots=True)
class Decision:
    classified: sc.DomainClassified
    state: VerdictState
    events: list[NewEvent]  # what to append: empty for a stable verdict


def decide(probe: ProbeObserved, result: ProbeResult, previous: VerdictState | None) -> Decision:
    """The verdict of one probe, the domain's new state and whether it is a change. Pure."""
    first = classified(probe, result)
    key = verdict_key(first)
    same = previous is not None and previous.key == key and previous.generation == probe.generation
    streak = previous.streak + 1 if same and previous is not None else 1
    verdict = msgspec.structs.replace(first, streak=streak) if streak != 1 else first
    state = VerdictState(result.started_at, probe.generation, key, streak)
    if not must_append(previous, verdict, key, streak):
        return Decision(verdict, state, [])
    event = verdict.new_event(
        event_id=stable_id(sc.DOMAIN_CLASSIFIED, uuid.UUID(probe.observation_id)), metadata=_metadata(probe)
    )
    return Decision(verdict, state, [event])


def _metadata(probe: ProbeObserved) -> dict[str, Any]:
    return {"account_id": probe.account_id} | (
        {"traceparent": probe.traceparent} if probe.traceparent else {}
    )


@contextlib.contextmanager
def _traced(tracer: Any, probe: ProbeObserved) -> Iterator[ProbeObserved]:
    """A traced probe (an enable check carries its request's trace) gets a span, and the
    events it appends carry that span's context: the trace runs request → probe → verdict."""
    if probe.traceparent is None or not telemetry.recording():  # unrecorded: its trace goes on as is
        yield probe
        return
    parent = telemetry.context_from({"traceparent": probe.traceparent})
    with tracer.start_as_current_span("classifier.verdict", context=parent,
                                      attributes={"certwatch.domain_id": probe.domain_id}):  # fmt: skip
        yield msgspec.structs.replace(probe, traceparent=telemetry.current_traceparent())


class VerdictWriter:
    """The observation consumer's handler (`platform.observation_stream.Handler`)."""

    def __init__(self, event_log: EventLog, *, cache: CertificateCache | None = None) -> None:
        self._log = event_log
        self._cache = cache or CertificateCache()
        self._tracer = telemetry.tracer()
        self._metrics = VerdictMetrics()
        self.appended = 0
        self.observed = 0

    async def __call__(self, batch: Sequence[Incoming]) -> None:
        probes = [p for p in map(_decode, batch) if p is not None]
        if not probes:
            return
        probes.sort(key=lambda p: (p.domain_id, p.result.started_at))
        domain_ids = sorted({p.domain_id for p in probes})
        appends: dict[str, list[NewEvent]] = {}
        async with self._log.pool.connection() as conn, conn.transaction():
            states = await load_states(conn, domain_ids)
            serving: dict[str, Serving | None] = dict(await change_events.load(conn, domain_ids))
            certs = await self._cache.facts(conn, set().union(*(p.result.fingerprints for p in probes)))
            rows: list[observations.Observation] = []
            moved: dict[str, VerdictState] = {}
            served: dict[str, tuple[datetime, Serving | None]] = {}
            verdicts: list[Verdict] = []
            for probe in probes:
                result = probe.result.facts(certs)
                if result is None:  # never stored: a broken invariant, not the site's doing
                    log.error("observation %s references unknown certificates: dropped", probe.observation_id,
                              extra={"domain_id": probe.domain_id})  # fmt: skip
                    continue
                previous = states.get(probe.domain_id)
                if previous is not None and result.started_at <= previous.checked_at:
                    continue  # redelivered, or older than what this domain already shows
                with _traced(self._tracer, probe) as traced:
                    decision = decide(traced, result, previous)
                    origin = change_events.Origin(probe.observation_id, probe.domain_id, probe.account_id,
                                                  _metadata(traced))  # fmt: skip
                    now_serving, found = change_events.decide(serving.get(probe.domain_id), origin, result)
                states[probe.domain_id] = moved[probe.domain_id] = decision.state
                verdicts.append(decision.classified.verdict)
                rows += observation_rows(result, decision.classified, probe.domain_id)
                if now_serving is not None:
                    serving[probe.domain_id] = now_serving
                    served[probe.domain_id] = (result.started_at, now_serving)
                if decision.events or found:
                    appends.setdefault(sc.stream_id(probe.domain_id), []).extend([*decision.events, *found])
            await observations.write(conn, rows)
            await save_states(conn, moved)
            await change_events.save(conn, served)
            if appends:
                await self._log.append_batch([(s, evs, None) for s, evs in appends.items()], conn=conn)
        self._metrics.record(verdicts)
        self.observed += len(probes)
        self.appended += sum(len(evs) for evs in appends.values())
