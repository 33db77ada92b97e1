"""Contact handlers of the Inventory API. Personal data is sealed per contact (crypto-shredding):
deleting a contact shreds its key, so its data is unreadable even in the event log."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.inventory import contact_views as cv
from certwatch.inventory import domain as d
from certwatch.inventory import views
from certwatch.inventory.contacts import Contact, validate_contact
from certwatch.platform import auth
from certwatch.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from certwatch.platform.eventlog import Conn, Cursor, EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up_now, catch_up_past
from certwatch.platform.shredding import Shredded, Vault
from certwatch.rules.targets import ValidationError
from certwatch.v1 import inventory_pb2 as pb

MAX_CONTACTS_PER_ACCOUNT = 1000


def _subject(contact_id: str) -> str:
    return f"contact:{contact_id}"


_CONTACT_FIELDS = (
    "name", "phone", "email", "dingtalk_webhook", "dingtalk_secret", "wecom_webhook", "lark_webhook",
    "lark_secret", "webhook_url", "webhook_secret", "apprise_url",
)  # fmt: skip
# Each secret and the URL it belongs to. The Apprise URL is never returned either, so an
# unmasked update that leaves it empty keeps it, like a secret.
_SECRETS = {
    "dingtalk_secret": "dingtalk_webhook",
    "lark_secret": "lark_webhook",
    "webhook_secret": "webhook_url",
}
_KEPT_WHEN_EMPTY = (*_SECRETS, "apprise_url")


def _validated(contact: pb.ContactInput, *, allow_custom_webhooks: bool) -> Contact:
    fields = {name: getattr(contact, name) or None for name in _CONTACT_FIELDS}
    try:
        return validate_contact(
            fields.pop("name"), fields.pop("phone"), fields.pop("email"), fields.pop("dingtalk_webhook"),
            fields.pop("dingtalk_secret"), allow_custom_webhook_hosts=allow_custom_webhooks, **fields,
        )  # fmt: skip
    except ValidationError as exc:
        raise InvalidArgument([(f"contact.{f}", desc) for f, desc in exc.field_descriptions()]) from exc


def merged_update(current: Contact, given: pb.ContactInput, paths: Sequence[str]) -> pb.ContactInput:
    """The contact an update asks for: the masked fields from `given`, the rest as stored.

    Without a mask every field is replaced (the older clients' meaning), except that an
    empty secret (or Apprise URL) keeps the stored one while its URL stays. Clearing a
    webhook drops its secret unless the secret is named too, since a secret without its
    webhook is refused.
    """
    unknown = sorted(set(paths) - set(_CONTACT_FIELDS))
    if unknown:
        raise InvalidArgument([("update_mask", f"unknown field(s) {', '.join(unknown)[:128]};"
                                f" valid: {', '.join(_CONTACT_FIELDS)}")])  # fmt: skip
    merged = pb.ContactInput()
    if not paths:
        merged.CopyFrom(given)
        for name in _KEPT_WHEN_EMPTY:
            url = _SECRETS.get(name)
            if not getattr(given, name) and getattr(current, name) and (url is None or getattr(given, url)):
                setattr(merged, name, getattr(current, name))
        return merged
    for name in _CONTACT_FIELDS:
        setattr(merged, name, getattr(given, name) if name in paths else getattr(current, name) or "")
    for name, url in _SECRETS.items():
        if url in paths and not getattr(given, url) and name not in paths:
            setattr(merged, name, "")
    return merged


def _parse_id(raw: str, field: str = "id") -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidArgument([(field, f"not a contact id (a UUID): {raw[:64]!r}")]) from None


class ContactHandlers:
    _log: EventLog
    _vault: Vault
    _now: Callable[[], datetime]
    _allow_custom_webhooks: bool

    async def CreateContact(self, request: pb.ContactInput, context: Any) -> pb.Contact:
        principal = auth.current()
        contact = _validated(request, allow_custom_webhooks=self._allow_custom_webhooks)
        contact_id = str(uuid.uuid4())
        async with self._log.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT count(*) FROM inventory_contacts WHERE account_id = %s",
                                     (principal.account_id,))  # fmt: skip
            row = await cur.fetchone()
            if row and row[0] >= MAX_CONTACTS_PER_ACCOUNT:
                raise FailedPrecondition(f"an account has at most {MAX_CONTACTS_PER_ACCOUNT} contacts")
            cursor = await self._append_contact(conn, principal, contact_id, contact, cc.CONTACT_CREATED, 0)
        await catch_up_past(self._log, cv.CONTACT_VIEW, cursor)
        return await self._contact(principal, contact_id)

    async def UpdateContact(self, request: pb.UpdateContactRequest, context: Any) -> pb.Contact:
        principal = auth.current()
        contact_id = _parse_id(request.id)
        async with self._log.pool.connection() as conn, conn.transaction():
            current = await self._open(conn, principal, contact_id)
            given = merged_update(current, request.contact, list(request.update_mask.paths))
            contact = _validated(given, allow_custom_webhooks=self._allow_custom_webhooks)
            version = len(await self._log.read_stream(cc.stream_id(contact_id), conn=conn))
            cursor = await self._append_contact(
                conn, principal, contact_id, contact, cc.CONTACT_UPDATED, version
            )
        await catch_up_past(self._log, cv.CONTACT_VIEW, cursor)
        return await self._contact(principal, contact_id)

    async def _append_contact(
        self, conn: Conn, principal: auth.Principal, contact_id: str, contact: Contact,
        event_type: str, version: int,
    ) -> Cursor:  # fmt: skip
        # Every field is sealed (the robot URLs carry their tokens); the event says only whether
        # a secret is among them.
        sealed = await self._vault.seal(conn, _subject(contact_id), dataclasses.asdict(contact))
        data = {"contact_id": contact_id, "account_id": str(principal.account_id), "sealed": sealed,
                "has_secret": contact.has_secret()}  # fmt: skip
        appended = await self._log.append(cc.stream_id(contact_id),
                                          [NewEvent(event_type, data, metadata=auth.event_metadata(principal))],
                                          expected_version=version, conn=conn)  # fmt: skip
        return appended[-1].cursor

    async def GetContact(self, request: pb.ContactRef, context: Any) -> pb.Contact:
        return await self._contact(auth.current(), _parse_id(request.id))

    async def ListContacts(self, request: pb.ListContactsRequest, context: Any) -> pb.ListContactsResponse:
        principal = auth.current()
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT contact_id FROM inventory_contacts WHERE account_id = %s ORDER BY created_at",
                (principal.account_id,),
            )
            ids = [str(r[0]) for r in await cur.fetchall()]
            return pb.ListContactsResponse(contacts=[await self._render(conn, principal, i) for i in ids])

    async def DeleteContact(self, request: pb.DeleteContactRequest, context: Any) -> pb.DeleteContactResponse:
        principal = auth.current()
        contact_id = _parse_id(request.id)
        await catch_up_now(self._log, views.DOMAIN_VIEW)  # the domains using it, as of now
        async with self._log.pool.connection() as conn, conn.transaction():
            await self._open(conn, principal, contact_id)
            using = await self._domains_using(conn, principal, contact_id)
            if using and not request.detach:
                raise FailedPrecondition(
                    f"contact is used by {len(using)} domain(s) ({', '.join(using[:5])}); remove it"
                    " from them first, or delete with detach=true"
                )
            meta = auth.event_metadata(principal)
            batch: list[tuple[str, Sequence[NewEvent], int | None]] = []
            for domain_id in using:
                recorded = await self._log.read_stream(dc.stream_id(domain_id), conn=conn)
                state = d.fold([(e.type, e.data) for e in recorded])
                assert state is not None
                remaining = tuple(c for c in state.contact_ids if c != contact_id)
                events = d.edit(state, port=None, contact_ids=remaining)
                batch.append((dc.stream_id(domain_id), [NewEvent(t, x, metadata=meta) for t, x in events],
                              state.version))  # fmt: skip
            version = len(await self._log.read_stream(cc.stream_id(contact_id), conn=conn))
            batch.append((cc.stream_id(contact_id), [NewEvent(
                cc.CONTACT_DELETED, {"contact_id": contact_id, "account_id": str(principal.account_id)},
                metadata=meta)], version))  # fmt: skip
            appended = await self._log.append_batch(batch, conn=conn)
            await Vault.shred(conn, _subject(contact_id))
        await catch_up_past(self._log, cv.CONTACT_VIEW, appended[-1].cursor)
        await catch_up_past(self._log, views.DOMAIN_VIEW, appended[-1].cursor)
        return pb.DeleteContactResponse(detached_domain_ids=using)

    async def _domains_using(self, conn: Conn, principal: auth.Principal, contact_id: str) -> list[str]:
        cur = await conn.execute(
            "SELECT domain_id FROM inventory_domains WHERE account_id = %s AND %s = ANY(contact_ids)"
            " ORDER BY host", (principal.account_id, contact_id),
        )  # fmt: skip
        return [str(r[0]) for r in await cur.fetchall()]

    async def _open(self, conn: Conn, principal: auth.Principal, contact_id: str) -> Contact:
        cur = await conn.execute(
            "SELECT sealed FROM inventory_contacts WHERE contact_id = %s AND account_id = %s",
            (contact_id, principal.account_id),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no contact {contact_id} in this account")
        try:
            data = await self._vault.open(conn, _subject(contact_id), row[0])
        except Shredded as exc:
            raise NotFound(f"contact {contact_id} was deleted") from exc
        return Contact(**data)

    async def _render(self, conn: Conn, principal: auth.Principal, contact_id: str) -> pb.Contact:
        contact = await self._open(conn, principal, contact_id)
        return pb.Contact(
            id=contact_id, name=contact.name, phone=contact.phone or "", email=contact.email or "",
            dingtalk_webhook=contact.dingtalk_webhook or "",
            has_dingtalk_secret=contact.dingtalk_secret is not None,
            wecom_webhook=contact.wecom_webhook or "", lark_webhook=contact.lark_webhook or "",
            has_lark_secret=contact.lark_secret is not None, webhook_url=contact.webhook_url or "",
            has_webhook_secret=contact.webhook_secret is not None, has_apprise_url=contact.apprise_url is not None,
            domain_ids=await self._domains_using(conn, principal, contact_id),
        )  # fmt: skip

    async def _contact(self, principal: auth.Principal, contact_id: str) -> pb.Contact:
        async with self._log.pool.connection() as conn:
            return await self._render(conn, principal, contact_id)

    async def _resolve_contacts(
        self, conn: Conn, principal: auth.Principal, refs: Sequence[str]
    ) -> tuple[str, ...]:
        """Contact ids or names of the caller's account → ids; unknown ones are an error."""
        if not refs:
            return ()
        cur = await conn.execute("SELECT contact_id, sealed FROM inventory_contacts WHERE account_id = %s",
                                 (principal.account_id,))  # fmt: skip
        rows = await cur.fetchall()
        ids = {str(r[0]) for r in rows}
        by_name: dict[str, str] = {}
        if any(ref not in ids for ref in refs):
            for contact_id, sealed in rows:
                with_name = await self._vault.open(conn, _subject(str(contact_id)), sealed)
                by_name.setdefault(with_name["name"].casefold(), str(contact_id))
        resolved: list[str] = []
        unknown: list[str] = []
        for ref in refs:
            found = ref if ref in ids else by_name.get(ref.casefold())
            (resolved if found else unknown).append(found or ref)
        if unknown:
            raise InvalidArgument([("contact_ids", f"no such contact in this account: {', '.join(unknown)}")])
        if len(set(resolved)) != len(resolved):
            raise InvalidArgument([("contact_ids", "a contact is listed twice")])
        return tuple(resolved)
