"""The orchestrator: takes due instances and drives their ACME orders to a certificate.

Each step is recorded before the next begins: the key and CSR (`OrderRequested`), then the
order URL the CA answered (`OrderPlaced`) before any challenge is answered, so a process
killed at any point resumes the same order. At most one order per instance is in flight: a
session-level advisory lock per instance (released if the process dies) and `lifecycle.step`,
which places a new order only when the recorded one can no longer complete. The `acme`
library blocks, so every CA call runs in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import Payload
from certwatch.hosting import acme_accounts, cert_material, lifecycle, store, views
from certwatch.hosting.acme_client import AcmeFailure, Ari, CaConfig, Session, Solver, mapped
from certwatch.hosting.lifecycle import Step
from certwatch.hosting.metrics import record_order
from certwatch.platform.errors import ConcurrencyConflict
from certwatch.platform.eventlog import Cursor, EventLog
from certwatch.platform.projection import Projection
from certwatch.platform.shredding import Vault
from certwatch.rules.classify import ABOUT_TO_EXPIRE_DAYS

log = logging.getLogger(__name__)
ACTOR = "hosting-orchestrator"
ARI_RETRY = timedelta(hours=6)  # RFC 9773's default when a CA gives no Retry-After


def key_subject(certificate_id: str) -> str:
    return f"hosting-key:{certificate_id}"


@dataclass
class Orchestrator:
    event_log: EventLog
    vault: Vault
    ca: CaConfig
    solver: Solver  # makes challenges answerable (http-01 responder, DNS provider)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    poll_s: float = 5.0
    # Instances worked at once: each holds a pooled connection for its lock and takes another
    # per step, so this stays well under the pool's size (20 in a service).
    concurrency: int = 8
    rng: random.Random = field(default_factory=random.Random)
    _inflight: set[str] = field(default_factory=set)
    _views: Projection = field(init=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    orders_placed: int = 0

    def __post_init__(self) -> None:
        self._views = views.projection(self.event_log)

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        return self.event_log.pool

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("hosting: a round of due instances failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_s)

    def stop(self) -> None:
        self._stop.set()

    async def run_due(self, limit: int = 50) -> int:
        """Work every instance due now (at most `limit`), concurrently; how many were taken.
        Uploaded certificates about to expire are announced on the way."""
        await self.announce_expiring_uploads()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT instance_id::text FROM hosting_instances WHERE due_at <= %s ORDER BY due_at LIMIT %s",
                (self.clock(), limit),
            )
            due = [r[0] for r in await cur.fetchall() if r[0] not in self._inflight]
        slots = asyncio.Semaphore(self.concurrency)

        async def bounded(instance_id: str) -> None:
            async with slots:
                await self._work(instance_id)

        await asyncio.gather(*(bounded(i) for i in due))
        return len(due)

    async def announce_expiring_uploads(self) -> int:
        """`UploadedCertificateExpiring` once per upload with fewer than ABOUT_TO_EXPIRE_DAYS left:
        appended at the upload stream's version 1, so a second replica (or a scan that ran
        before the views caught up) conflicts instead of announcing it twice."""
        now = self.clock()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT certificate_id::text, account_id::text, names, not_after FROM hosting_certificates"
                " WHERE uploaded AND NOT expiry_announced AND not_after < %s ORDER BY not_after LIMIT 100",
                (now + timedelta(days=ABOUT_TO_EXPIRE_DAYS),),
            )
            rows = await cur.fetchall()
        last: Cursor | None = None
        announced = 0
        for certificate_id, account_id, names, not_after in rows:
            expiring = hc.UploadedCertificateExpiring(certificate_id=certificate_id, account_id=account_id,
                                                      names=names, not_after=not_after, at=now)  # fmt: skip
            try:
                appended = await self.event_log.append(hc.cert_stream_id(certificate_id), [expiring.new_event(
                    metadata={"account_id": account_id, "actor": ACTOR})], expected_version=1)  # fmt: skip
            except ConcurrencyConflict:  # announced already (or deleted meanwhile)
                continue
            last = appended[-1].cursor
            announced += 1
        await views.caught_up(self.event_log, self._views, last)
        return announced

    async def _work(self, instance_id: str) -> None:
        self._inflight.add(instance_id)
        try:
            async with self.pool.connection() as lock_conn:
                cur = await lock_conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (hc.stream_id(instance_id),)
                )
                row = await cur.fetchone()
                if not (row and row[0]):
                    return  # another replica has it
                try:
                    await self._advance(instance_id)
                finally:
                    await lock_conn.execute(
                        "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (hc.stream_id(instance_id),)
                    )
        finally:
            self._inflight.discard(instance_id)

    async def _load(self, instance_id: str) -> store.Loaded:
        async with self.pool.connection() as conn:
            loaded = await store.load(self.event_log, conn, instance_id)
        assert loaded is not None
        return loaded

    async def _record(self, changes: Sequence[store.Change]) -> None:
        """Append, then wait until the views show it (the due scan and adoption read them)."""
        account = next(i.account_id for i, _, _ in changes if i is not None)
        async with self.pool.connection() as conn, conn.transaction():
            recorded = await store.record(
                self.event_log, conn, changes, {"account_id": account, "actor": ACTOR}
            )
        await views.caught_up(self.event_log, self._views, recorded.cursor)

    async def _advance(self, instance_id: str) -> None:
        loaded = await self._load(instance_id)
        now = self.clock()
        todo = lifecycle.step(loaded.instance, now)
        if todo is None:
            return
        if todo == Step.END_YEAR:
            await self._end_year(loaded, now)
            return
        if todo == Step.CHECK_ARI:
            await self._check_ari(loaded)
            return
        instance = loaded.instance
        try:
            await self._issue(loaded, todo)
        except AcmeFailure as exc:
            record_order("failed", renewal=instance.current is not None, kind=exc.kind)
            current = await self._load(instance_id)
            attempt = current.instance.attempt
            failures = current.instance.failures + 1
            retry_at = now + lifecycle.backoff(failures, exc.retry_after, rng=self.rng)
            log.warning("hosting: order for instance %s failed (%s), retry at %s", instance_id, exc.kind,
                        retry_at.isoformat())  # fmt: skip
            failed = hc.OrderFailed(
                instance_id=instance_id, account_id=instance.account_id,
                attempt_id=attempt.attempt_id if attempt else "", order_url=attempt.order_url if attempt else None,
                kind=exc.kind, detail=exc.detail, failures=failures, retry_at=retry_at,
                renewal=instance.current is not None, order_abandoned=exc.order_invalid, at=self.clock(),
            )  # fmt: skip
            await self._record([(current.instance, current.version, [failed])])
            if exc.account_unknown:  # e.g. a CA that lost its state: the next try registers again
                await acme_accounts.forget(self.pool, instance.account_id, self.ca.directory)
        else:
            record_order("issued", renewal=instance.current is not None)

    async def _session(self, instance: lifecycle.Instance) -> Session:
        email = instance.application.contact_email if instance.application else None
        return await acme_accounts.session(self.pool, self.vault, self.ca, instance.account_id, email)

    async def _issue(self, loaded: store.Loaded, todo: Step) -> None:
        instance = loaded.instance
        application = instance.application
        assert application is not None
        session = await self._session(instance)
        fresh = instance.attempt is None
        if fresh:
            loaded = await self._request(loaded, application)
        attempt = loaded.instance.attempt
        assert attempt is not None
        csr = attempt.csr_pem.encode()
        if todo == Step.ORDER or attempt.order_url is None:
            # An attempt recorded earlier may have reached the CA before the process died.
            adopted = None if fresh else await self._adoptable(session, csr)
            if adopted is not None:
                orderr = await asyncio.to_thread(mapped, lambda: session.load_order(adopted, csr))
            else:
                orderr = await asyncio.to_thread(mapped, lambda: session.new_order(csr))
                self.orders_placed += 1
            placed = hc.OrderPlaced(instance_id=instance.instance_id, account_id=instance.account_id,
                                    attempt_id=attempt.attempt_id, order_url=str(orderr.uri),
                                    adopted=adopted is not None, at=self.clock())  # fmt: skip
            await self._record(
                [(loaded.instance, loaded.version, [placed])]
            )  # hosting_orders: adoption reads it
            loaded = store.Loaded(lifecycle.evolve(loaded.instance, placed), loaded.version + 1)
        else:
            url = attempt.order_url
            orderr = await asyncio.to_thread(mapped, lambda: session.load_order(url, csr))
        fullchain = await asyncio.to_thread(
            mapped, lambda: session.complete(orderr, application.validation, self.solver)
        )
        facts = cert_material.of_fullchain(fullchain)
        ca_offset = lifecycle.ca_clock_offset(self.clock(), session.ca_date)
        ari = await asyncio.to_thread(mapped, lambda: session.renewal_info(facts.cert_pem.encode()))
        lifetime = lifecycle.lifetime_renewal(facts.not_before, facts.not_after, ca_offset)
        renew_at, source, check_at = self._renewal(ari, lifetime, "lifetime")
        # A window already open for a certificate just issued would renew in a loop.
        renew_at = max(renew_at, self.clock() + lifecycle.earliest_renewal(facts.not_before, facts.not_after))
        await self._issued(loaded, facts, str(orderr.uri), renew_at, source, check_at)

    def _renewal(
        self, ari: Ari, fallback: datetime, fallback_source: str
    ) -> tuple[datetime, str, datetime | None]:
        """(renew at, why, when to ask ARI again): the ARI window's time when there is one."""
        check_at = self.clock() + ari.check_again_in if ari.check_again_in is not None else None
        if ari.renew_at is not None:
            return ari.renew_at, "ari", check_at
        return fallback, fallback_source, check_at

    async def _check_ari(self, loaded: store.Loaded) -> None:
        instance = loaded.instance
        current = instance.current
        assert current is not None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT cert_pem FROM hosting_certificates WHERE certificate_id = %s",
                (current.certificate_id,),
            )
            row = await cur.fetchone()
        assert row is not None
        try:
            session = await self._session(instance)
            ari = await asyncio.to_thread(mapped, lambda: session.renewal_info(str(row[0]).encode()))
        except AcmeFailure as exc:  # the renewal time stands; ask again later
            log.warning("hosting: ARI check for instance %s failed: %s", instance.instance_id, exc)
            ari = Ari(None, ARI_RETRY)
        renew_at, source, check_at = self._renewal(ari, current.renew_at, current.renew_source)
        moved = hc.RenewalRescheduled(instance_id=instance.instance_id, account_id=instance.account_id,
                                      certificate_id=current.certificate_id, renew_at=renew_at, renew_source=source,
                                      ari_check_at=check_at, at=self.clock())  # fmt: skip
        await self._record([(instance, loaded.version, [moved])])

    async def _adoptable(self, session: Session, csr: bytes) -> str | None:
        found = await asyncio.to_thread(mapped, lambda: session.open_orders_for(csr))
        if not found:
            return None
        async with self.pool.connection() as conn:
            free = await store.unclaimed(conn, found)
        return free[0] if free else None

    async def _request(self, loaded: store.Loaded, application: hc.Application) -> store.Loaded:
        instance = loaded.instance
        certificate_id = str(uuid.uuid4())
        key_pem = await asyncio.to_thread(cert_material.new_key_pem, application.key_type)
        csr = await asyncio.to_thread(cert_material.csr_pem, key_pem, application.names)
        async with self.pool.connection() as conn, conn.transaction():
            sealed = await self.vault.seal(conn, key_subject(certificate_id), key_pem.decode())
            requested = hc.OrderRequested(
                instance_id=instance.instance_id, account_id=instance.account_id, attempt_id=str(uuid.uuid4()),
                certificate_id=certificate_id, csr_pem=csr.decode(), sealed_key=sealed,
                renewal=instance.current is not None, at=self.clock(),
            )  # fmt: skip
            # No wait for the views: nothing reads them before the order's next record, which waits.
            await store.record(self.event_log, conn, [(instance, loaded.version, [requested])],
                               {"account_id": instance.account_id, "actor": ACTOR})  # fmt: skip
        return store.Loaded(lifecycle.evolve(instance, requested), loaded.version + 1)

    async def _issued(self, loaded: store.Loaded, facts: hc.Certificate, order_url: str,
                      renew_at: datetime, source: str, check_at: datetime | None) -> None:  # fmt: skip
        instance = loaded.instance
        attempt = instance.attempt
        assert attempt is not None
        now = self.clock()
        kind = hc.CertificateRenewed if instance.current is not None else hc.CertificateIssued
        issued = kind(
            certificate_id=attempt.certificate_id, account_id=instance.account_id, certificate=facts,
            sealed_key=attempt.sealed_key,
            instance_id=instance.instance_id, order_url=order_url, renew_at=renew_at, renew_source=source,
            ari_check_at=check_at, at=now,
        )  # fmt: skip
        events: list[Payload] = [issued]
        if instance.state != hc.InstanceState.HOSTED:
            events.append(hc.InstanceStateChanged(instance_id=instance.instance_id, account_id=instance.account_id,
                                                  state=hc.InstanceState.HOSTED, reason="certificate issued",
                                                  at=now))  # fmt: skip
        await self._record([(instance, loaded.version, events)])
        log.info("hosting: instance %s has certificate %s (serial %s), renewal at %s (%s)",
                 instance.instance_id, attempt.certificate_id, facts.serial, renew_at.isoformat(), source)  # fmt: skip

    async def _end_year(self, loaded: store.Loaded, now: datetime) -> None:
        instance = loaded.instance
        ended = hc.InstanceStateChanged(instance_id=instance.instance_id, account_id=instance.account_id,
                                        state=hc.InstanceState.ENDED, reason=f"year {instance.year} is over",
                                        at=now)  # fmt: skip
        changes: list[store.Change] = []
        if instance.next_instance_id is None:
            current = instance.current
            ending = hc.HostingEnding(
                instance_id=instance.instance_id, account_id=instance.account_id,
                subscription_id=instance.subscription_id, certificate_id=current.certificate_id if current else None,
                last_expiry=current.not_after if current else None, at=now,
            )  # fmt: skip
            changes.append((instance, loaded.version, [ended, ending]))
        else:
            nxt = await self._load(instance.next_instance_id)
            assert instance.application is not None
            changes.append((instance, loaded.version, [ended]))
            changes.append((nxt.instance, nxt.version, activation(nxt.instance, instance.application, now,
                                                                    f"year {instance.year} is over")))  # fmt: skip
        await self._record(changes)


def activation(instance: lifecycle.Instance, application: hc.Application, now: datetime, reason: str,
               *, automatic: bool = True) -> list[Payload]:  # fmt: skip
    """The events that start an instance's year with `application` (the user's, or the first year's)."""
    return [
        hc.InstanceStateChanged(instance_id=instance.instance_id, account_id=instance.account_id,
                                state=hc.InstanceState.APPLYING, reason=reason, at=now,
                                year_ends_at=now + lifecycle.YEAR),
        hc.ApplicationSubmitted(instance_id=instance.instance_id, account_id=instance.account_id,
                                application=application, automatic=automatic, at=now),
    ]  # fmt: skip
