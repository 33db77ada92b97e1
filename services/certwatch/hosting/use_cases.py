"""Hosting commands and queries of one account, apart from gRPC (the API maps them).

Another account's ids answer NotFound, exactly as ids that do not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import Payload, decode
from certwatch.hosting import cert_material, lifecycle, store, views
from certwatch.hosting.application import checked_application, checked_years
from certwatch.hosting.orchestrator import activation, key_subject
from certwatch.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.shredding import Vault


@dataclass(frozen=True, slots=True)
class CertificateRow:
    id: str
    instance_id: str | None
    serial: str
    not_before: datetime
    not_after: datetime
    names: list[str]
    issuer: str
    uploaded: bool


@dataclass(frozen=True, slots=True)
class InstanceView:
    instance: lifecycle.Instance
    last_failure: str | None

    @property
    def next_renewal(self) -> datetime | None:
        i = self.instance
        if i.state != hc.InstanceState.HOSTED or i.current is None:
            return None
        # An order on its way (or a "renew now") is retried at its own time, not the schedule's.
        return lifecycle.due_at(i) if i.renew_requested or i.attempt is not None else lifecycle.renewal_due(i)


def parse_id(raw: str, field: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidArgument([(field, f"not an id (a UUID): {raw[:64]!r}")]) from None


_CERT_COLUMNS = (
    "certificate_id::text, instance_id::text, serial, not_before, not_after, names, issuer, uploaded"
)


class HostingUseCases:
    def __init__(self, event_log: EventLog, vault: Vault, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 ca_file: str | None = None) -> None:  # fmt: skip
        """`ca_file`: the trust store uploads are verified against (CERTWATCH_CA_FILE)."""
        self._log = event_log
        self._vault = vault
        self._now = clock
        self._ca_file = ca_file
        self._views = views.projection(event_log)

    def _meta(self, account_id: str, actor: str) -> dict[str, str]:
        return {"account_id": account_id, "actor": actor}

    async def subscribe(
        self, account_id: str, years: int, actor: str
    ) -> tuple[str, list[lifecycle.Instance]]:
        checked_years(years)
        subscription_id = str(uuid.uuid4())
        ids = [str(uuid.uuid4()) for _ in range(years)]
        now = self._now()
        changes: list[store.Change] = []
        for year, instance_id in enumerate(ids, start=1):
            created = hc.InstanceCreated(
                instance_id=instance_id, account_id=account_id, subscription_id=subscription_id, year=year,
                years=years, at=now,
                state=hc.InstanceState.PENDING_APPLICATION if year == 1 else hc.InstanceState.NOT_ACTIVATED,
                previous_instance_id=ids[year - 2] if year > 1 else None,
                next_instance_id=ids[year] if year < years else None,
            )  # fmt: skip
            changes.append((None, 0, [created]))
        async with self._log.pool.connection() as conn, conn.transaction():
            recorded = await store.record(self._log, conn, changes, self._meta(account_id, actor))
        await views.caught_up(self._log, self._views, recorded.cursor)
        return subscription_id, recorded.instances

    async def _owned(
        self, conn: Conn, account_id: str, instance_id: str, *, lock: bool = False
    ) -> store.Loaded:
        loaded = await store.load(self._log, conn, parse_id(instance_id, "instance_id"), for_update=lock)
        if loaded is None or loaded.instance.account_id != account_id:
            raise NotFound(f"no hosting instance {instance_id} in this account")
        return loaded

    async def apply(self, account_id: str, instance_id: str, names: Sequence[str], key_type: str, company: str,
                    contact_email: str, validation: str, actor: str) -> lifecycle.Instance:  # fmt: skip
        application = checked_application(names, key_type, company, contact_email, validation)
        async with self._log.pool.connection() as conn, conn.transaction():
            loaded = await self._owned(conn, account_id, instance_id, lock=True)
            if loaded.instance.state != hc.InstanceState.PENDING_APPLICATION:
                raise FailedPrecondition(f"instance {instance_id} is {loaded.instance.state}: only a"
                                         " PENDING_APPLICATION instance takes an application")  # fmt: skip
            events = activation(
                loaded.instance, application, self._now(), "application submitted", automatic=False
            )
            recorded = await store.record(self._log, conn, [(loaded.instance, loaded.version, events)],
                                          self._meta(account_id, actor))  # fmt: skip
        await views.caught_up(self._log, self._views, recorded.cursor)
        return recorded.instances[0]

    async def renew_now(self, account_id: str, instance_id: str, actor: str) -> lifecycle.Instance:
        async with self._log.pool.connection() as conn, conn.transaction():
            loaded = await self._owned(conn, account_id, instance_id, lock=True)
            i = loaded.instance
            if i.state != hc.InstanceState.HOSTED:
                raise FailedPrecondition(
                    f"instance {instance_id} is {i.state}: only a HOSTED instance is renewed"
                )
            if i.attempt is not None or i.renew_requested:
                return i  # an order is already on its way: never a second one
            requested: list[Payload] = [hc.RenewalRequested(instance_id=i.instance_id, account_id=account_id,
                                                            at=self._now())]  # fmt: skip
            recorded = await store.record(self._log, conn, [(i, loaded.version, requested)],
                                          self._meta(account_id, actor))  # fmt: skip
        await views.caught_up(self._log, self._views, recorded.cursor)
        return recorded.instances[0]

    async def instances(self, account_id: str) -> list[InstanceView]:
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT instance_id::text FROM hosting_instances WHERE account_id = %s"
                " ORDER BY created_at, subscription_id, year",
                (account_id,),
            )
            ids = [r[0] for r in await cur.fetchall()]
            streams = await self._log.read_streams([hc.stream_id(i) for i in ids], conn=conn)
        return [_view(events) for events in streams.values() if events]

    async def lifecycle(self, account_id: str, instance_id: str) -> InstanceView:
        async with self._log.pool.connection() as conn:
            await self._owned(conn, account_id, instance_id)
            events = await self._log.read_stream(
                hc.stream_id(parse_id(instance_id, "instance_id")), conn=conn
            )
        return _view(events)

    async def upload(self, account_id: str, cert_pem: bytes, key_pem: bytes, chain_pem: bytes,
                     actor: str) -> CertificateRow:  # fmt: skip
        facts, key = cert_material.checked_upload(cert_pem, key_pem, chain_pem, ca_file=self._ca_file)
        certificate_id = str(uuid.uuid4())
        now = self._now()
        async with self._log.pool.connection() as conn, conn.transaction():
            sealed = await self._vault.seal(conn, key_subject(certificate_id), key.decode())
            uploaded = hc.CertificateUploaded(
                certificate_id=certificate_id, account_id=account_id, certificate=facts, sealed_key=sealed, at=now,
            )  # fmt: skip
            appended = await self._log.append(hc.cert_stream_id(certificate_id), [uploaded.new_event(
                metadata=self._meta(account_id, actor))], expected_version=0, conn=conn)  # fmt: skip
        await views.caught_up(self._log, self._views, appended[-1].cursor)
        return CertificateRow(certificate_id, None, facts.serial, facts.not_before, facts.not_after, facts.names,
                              facts.issuer, True)  # fmt: skip

    async def delete_certificate(self, account_id: str, certificate_id: str, actor: str) -> None:
        """Crypto-shredding: the key's data key is destroyed, so every sealed copy (row, events)
        is unreadable; the current certificate of a hosted instance cannot be deleted."""
        cid = parse_id(certificate_id, "certificate_id")
        async with self._log.pool.connection() as conn, conn.transaction():
            # The certificate's stream lock serializes deletes: the second finds the first's event.
            stream = await self._log.read_stream(hc.cert_stream_id(cid), conn=conn, for_update=True)
            cur = await conn.execute(
                "SELECT 1 FROM hosting_certificates WHERE certificate_id = %s AND account_id = %s",
                (cid, account_id),
            )
            if await cur.fetchone() is None or any(e.type == hc.CertificateDeleted.TYPE for e in stream):
                raise NotFound(f"no certificate {certificate_id} in this account")
            cur = await conn.execute(
                "SELECT 1 FROM hosting_instances WHERE certificate_id = %s AND state = 'HOSTED'", (cid,)
            )
            if await cur.fetchone() is not None:
                raise FailedPrecondition(f"certificate {certificate_id} is the current certificate of a hosted"
                                         " instance; it is replaced at its next renewal")  # fmt: skip
            deleted = hc.CertificateDeleted(certificate_id=cid, account_id=account_id, at=self._now())
            appended = await self._log.append(
                hc.cert_stream_id(cid), [deleted.new_event(metadata=self._meta(account_id, actor))],
                expected_version=None, conn=conn,
            )  # fmt: skip
            await Vault.shred(conn, key_subject(cid))
        await views.caught_up(self._log, self._views, appended[-1].cursor)

    async def certificates(self, account_id: str) -> list[CertificateRow]:
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_CERT_COLUMNS} FROM hosting_certificates WHERE account_id = %s ORDER BY recorded_at",
                (account_id,),
            )
            return [CertificateRow(*r) for r in await cur.fetchall()]

    async def download(
        self, account_id: str, certificate_id: str, fmt: str, password: str
    ) -> tuple[CertificateRow, bytes]:
        if fmt not in ("", "pem", "pfx"):
            raise InvalidArgument([("format", "must be pem or pfx")])
        cid = parse_id(certificate_id, "certificate_id")
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_CERT_COLUMNS}, cert_pem, chain_pem, sealed_key FROM hosting_certificates"
                " WHERE certificate_id = %s AND account_id = %s",
                (cid, account_id),
            )
            row: Any = await cur.fetchone()
            if row is None:
                raise NotFound(f"no certificate {certificate_id} in this account")
            key_pem = str(await self._vault.open(conn, key_subject(cid), row[10])).encode()
        cert = CertificateRow(*row[:8])
        if fmt == "pfx":
            return cert, cert_material.to_pkcs12(row[8], row[9], key_pem, password.encode() or None)
        return cert, (row[8] + row[9]).encode() + key_pem


def _view(events: Sequence[Any]) -> InstanceView:
    payloads = [decode(e) for e in events]
    instance = lifecycle.fold(payloads)
    last_failure = None
    for p in payloads:
        if isinstance(p, hc.OrderFailed):
            last_failure = f"{p.kind}: {p.detail}"
        elif isinstance(p, hc.CertificateIssued):
            last_failure = None
    return InstanceView(instance, last_failure)
