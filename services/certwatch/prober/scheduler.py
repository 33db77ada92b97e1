"""The probe loop: claim due domains, probe them concurrently, record results in batches.

Claiming is continuous (up to the concurrency limit), and finished probes are flushed every
`flush_s` in one transaction: one reschedule statement, the chains no probe stored before,
and the observations published to the observation stream (`ProbeObserved`): a probe adds
nothing to the permanent log; the classifier appends what changed. Recording runs beside
the claims: a finished probe's slot is claimed again at once, not after the round it ends
in is written (which held every slot idle for the write's 0.1-0.5 s under load, and held
10,000 enables to ~40% of the prober's own rate).

A claim is a lease. A prober that dies loses nothing: its claimed rows fall due again when
the lease runs out and another prober takes them. A prober that outlives its lease (paused,
partitioned) finds the rows no longer held by it and records nothing for them, so a round
never records a domain twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from nats.errors import Error as NatsError

from certwatch.contracts.probe import ObservedResult, ProbeObserved
from certwatch.platform import certificates, telemetry
from certwatch.platform.eventlog import EventLog
from certwatch.platform.health import Progress
from certwatch.platform.observation_stream import Outgoing
from certwatch.prober import schedule
from certwatch.prober.chain_refs import by_reference
from certwatch.prober.metrics import ProbeMetrics
from certwatch.prober.options import ProbeOptions
from certwatch.prober.tls_probe import der_of, probe
from certwatch.rules.facts import ProbeResult

log = logging.getLogger(__name__)

_Done = tuple[schedule.Due, ProbeResult, str | None]


class Scheduler:
    def __init__(
        self,
        event_log: EventLog,
        options: ProbeOptions,
        publish: Callable[[Sequence[Outgoing]], Awaitable[object]],
        *,
        interval_s: float,
        jitter_s: float,
        concurrency: int,
        worker_id: str | None = None,
        idle_poll_s: float = 0.25,
        flush_s: float = 0.05,
        lease_s: float | None = None,
        first_check_retry_s: float = 2.0,
    ) -> None:
        self._log = event_log
        self._options = options
        self._publish = publish
        self._interval = interval_s
        self._jitter = jitter_s
        self._concurrency = concurrency
        self._first_check_retry_s = first_check_retry_s
        # An enable check may probe twice (see `_probe`).
        self._lease_s = 2 * options.overall + first_check_retry_s + 30.0 if lease_s is None else lease_s
        self.worker_id = worker_id or f"{socket.gethostname()}-{id(self):x}"
        self._idle_poll_s = idle_poll_s
        self._flush_s = flush_s
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[_Done]] = {}  # by domain id
        self._unrecorded: list[_Done] = []  # finished, for the recorder
        self._finished = asyncio.Event()  # set when `_unrecorded` has something
        self._cannot_record = False
        self.probed = 0
        self.progress = Progress()
        # Looked up once: get_tracer builds and compares an instrumentation scope per call.
        # (A proxy tracer from before telemetry.setup() still follows the real provider.)
        self._tracer = telemetry.tracer()
        self._metrics = ProbeMetrics()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Something became due (a domain was enabled or edited): claim now, not after the
        idle poll. Called by the schedule projection after it commits."""
        self._wake.set()

    async def run(self) -> None:
        recorder = asyncio.create_task(self._recorder())
        try:
            while not self._stop.is_set():
                if recorder.done():  # it only ends by a bug: fail loudly, as the loop would
                    recorder.result()
                    raise RuntimeError("the prober's recorder stopped")
                try:
                    await self._cycle()
                    if not self._cannot_record:  # the recorder's failure stands until it writes
                        self.progress.ok()
                except psycopg.OperationalError as exc:
                    self.progress.failed(exc)
                    log.warning("prober: database unavailable", extra={"error": str(exc)})
                    await self._sleep(1.0)
            # graceful: finish and record what is in flight (bounded by the probe timeout)
            if self._inflight:
                done, _ = await asyncio.wait(self._inflight.values(), timeout=self._options.overall + 1)
                self._unrecorded += [t.result() for t in done if not t.cancelled() and t.exception() is None]
                self._inflight = {}
            self._finished.set()
            with contextlib.suppress(TimeoutError):  # a write that hangs: the leases return them
                await asyncio.wait_for(recorder, self._options.overall + 5)  # drains `_unrecorded`
        finally:
            # Cancelled (or done): no orphan probes; unrecorded claims return when leases end.
            recorder.cancel()
            for task in self._inflight.values():
                task.cancel()

    async def _recorder(self) -> None:
        """Record finished probes a batch every `flush_s`, until stopped and drained. A batch
        that cannot be written is dropped: its claims fall due again when their leases end."""
        while not (self._stop.is_set() and not self._unrecorded):
            await self._finished.wait()
            if not self._stop.is_set():
                await asyncio.sleep(self._flush_s)  # let a few more finish: fewer, bigger batches
            batch, self._unrecorded = self._unrecorded, []
            self._finished.clear()
            try:
                await self._record(batch)
                self._cannot_record = False
            except (psycopg.OperationalError, NatsError, TimeoutError) as exc:
                self._cannot_record = True
                self.progress.failed(exc)
                log.warning("prober: could not record %d probes", len(batch), extra={"error": str(exc)})
                if not self._stop.is_set():
                    await asyncio.sleep(1.0)
            self._wake.set()  # room for claims again, if the backlog held them

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _cycle(self) -> None:
        # Finished probes waiting to be recorded hold back claims past one concurrency's
        # worth: a recorder that cannot keep up (or cannot write) stops the probing.
        backlog = max(0, len(self._unrecorded) - self._concurrency)
        room = self._concurrency - len(self._inflight) - backlog
        claimed: list[schedule.Due] = []
        if room > 0:
            async with self._log.pool.connection() as conn:
                claimed = await schedule.claim(conn, worker=self.worker_id, limit=room, lease_s=self._lease_s)
                traces = await self._traceparents(conn, claimed)
            for due in claimed:
                if due.domain_id in self._inflight:  # our own lease ran out under this probe
                    continue
                task = asyncio.create_task(self._probe(due, traces.get(due.domain_id)))
                self._inflight[due.domain_id] = task
        if not self._inflight:
            await self._sleep(self._idle_poll_s)
            return
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                [*self._inflight.values(), wake], return_when=asyncio.FIRST_COMPLETED,
                timeout=self._flush_s if claimed or room <= 0 else self._idle_poll_s,
            )  # fmt: skip
        finally:
            wake.cancel()
        self._wake.clear()
        if any(t.done() for t in self._inflight.values()):
            await asyncio.sleep(self._flush_s)  # let a few more finish: one claim for them all
        finished = [t for t in self._inflight.values() if t.done()]
        if finished:
            self._inflight = {k: t for k, t in self._inflight.items() if not t.done()}
            self._unrecorded += [t.result() for t in finished]
            self._finished.set()

    async def _traceparents(self, conn: Any, claimed: list[schedule.Due]) -> dict[str, str]:
        first = [d.domain_id for d in claimed if d.first_check]
        if not first:
            return {}
        cur = await conn.execute(
            "SELECT domain_id::text, traceparent FROM probe_schedule"
            " WHERE domain_id = ANY(%b::uuid[]) AND traceparent IS NOT NULL",
            (first,),
        )
        return {r[0]: r[1] for r in await cur.fetchall()}

    async def _probe(self, due: schedule.Due, traceparent: str | None) -> _Done:
        if not telemetry.recording():  # no span: the observation carries the enable's trace on
            return due, await self._timed_probe(due), traceparent
        parent = telemetry.context_from({"traceparent": traceparent} if traceparent else None)
        with self._tracer.start_as_current_span(
            "probe", context=parent, kind=telemetry.CLIENT,
            attributes={"certwatch.host": due.host, "certwatch.port": due.port},
        ):  # fmt: skip
            return due, await self._timed_probe(due), telemetry.current_traceparent()

    async def _timed_probe(self, due: schedule.Due) -> ProbeResult:
        start = time.perf_counter()
        result = await probe(due.host, due.port, options=self._options)
        if due.first_check and result.timed_out:
            # An enable check decides ENABLE_FAILED, which stays until the user acts: one
            # lost packet or a moment of overload must not decide it. Once more, a bit later.
            await asyncio.sleep(self._first_check_retry_s)
            result = await probe(due.host, due.port, options=self._options)
        self._metrics.record(result, (time.perf_counter() - start) * 1000)
        return result

    async def _record(self, results: list[_Done]) -> None:
        """Store unseen chains, then reschedule and publish the observations in one
        transaction: a publish that fails rolls the round back, so the claims fall due again
        when their leases end (a probe is observed at least once; the classifier drops a
        redelivery)."""
        if not results:
            return
        now = datetime.now(UTC)
        refs = {due.domain_id: by_reference(result) for due, result, _ in results}
        async with self._log.pool.connection() as conn:
            # Committed before anything references them: the classifier may read an
            # observation before this round's own transaction commits.
            chains: list[tuple[str, ...]] = []
            certs: list[certificates.StoredCertificate] = []
            for due, _, _ in results:
                new_chains, new_certs = refs[due.domain_id].unstored(due.reported_chains, der_of)
                chains += new_chains
                certs += new_certs
            if chains:
                async with conn.transaction():
                    await certificates.put_certificates(conn, certs)
                    await certificates.put_chains(conn, chains)
            async with conn.transaction():
                held = await schedule.reschedule(
                    conn, [(due, self._next_due(now), frozenset(refs[due.domain_id].chains)) for due, _, _ in results],
                    probed_at=now, worker=self.worker_id,
                )  # fmt: skip
                kept = [r for r in results if r[0].domain_id in held]
                await self._publish([self._observation(r) for r in kept])
        if len(kept) < len(results):
            log.info("prober: %d results dropped, their leases had passed", len(results) - len(kept))
        self.probed += len(kept)
        self._metrics.probes.add(len(kept))
        self.progress.advanced()

    async def backlog(self, conn: Any) -> tuple[int, str]:
        """Domains due for longer than the idle poll and a flush, not yet claimed (capped)."""
        overdue, oldest = await schedule.overdue(conn, grace_s=max(5.0, 4 * self._idle_poll_s))
        return overdue, f"oldest due {oldest:.0f}s ago" if overdue else ""

    def _observation(self, done: _Done) -> Outgoing:
        due, result, traceparent = done
        observed = ProbeObserved(
            observation_id=str(uuid.uuid4()), domain_id=due.domain_id, account_id=due.account_id,
            host=due.host, port=due.port, generation=due.generation, first_check=due.first_check,
            result=ObservedResult.of(result), prober=self.worker_id, traceparent=traceparent,
        )  # fmt: skip
        return Outgoing(observed.observation_id, due.domain_id, observed.encode())

    def _next_due(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self._interval + random.uniform(0, self._jitter))
