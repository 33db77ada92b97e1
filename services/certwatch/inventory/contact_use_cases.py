"""The inventory's contact use cases, apart from any transport (see `domain_use_cases`).

Personal data is sealed per contact (crypto-shredding): deleting a contact shreds its key,
so its data is unreadable even in the event log. Every use case works inside the
principal's account; another account's contacts are NOT_FOUND, exactly as ids that do not
exist. Refusals are the platform's errors, mapped once for every transport
(`platform.error_codes`); the gRPC servicer (`contacts_api`) only translates messages.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

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

MAX_CONTACTS_PER_ACCOUNT = 1000


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A contact as a form or request gives it: "" is absent."""

    name: str = ""
    phone: str = ""
    email: str = ""
    dingtalk_webhook: str = ""
    dingtalk_secret: str = ""
    wecom_webhook: str = ""
    lark_webhook: str = ""
    lark_secret: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    apprise_url: str = ""


_CONTACT_FIELDS = tuple(f.name for f in fields(ContactInput))
# Each secret and the URL it belongs to. The Apprise URL is never returned either, so an
# unmasked update that leaves it empty keeps it, like a secret.
_SECRETS = {
    "dingtalk_secret": "dingtalk_webhook",
    "lark_secret": "lark_webhook",
    "webhook_secret": "webhook_url",
}
_KEPT_WHEN_EMPTY = (*_SECRETS, "apprise_url")


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact as shown to its account: the secret never, only whether there is one."""

    id: str
    name: str
    phone: str | None
    email: str | None
    dingtalk_webhook: str | None
    has_dingtalk_secret: bool
    domain_ids: tuple[str, ...]
    wecom_webhook: str | None = None
    lark_webhook: str | None = None
    has_lark_secret: bool = False
    webhook_url: str | None = None
    has_webhook_secret: bool = False
    has_apprise_url: bool = False


def merged_update(current: Contact, given: ContactInput, paths: Sequence[str]) -> ContactInput:
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
    if not paths:
        kept = {
            name: getattr(current, name)
            for name in _KEPT_WHEN_EMPTY
            if not getattr(given, name)
            and getattr(current, name)
            and (name not in _SECRETS or getattr(given, _SECRETS[name]))
        }
        return replace(given, **kept)
    merged = ContactInput(**{
        name: getattr(given, name) if name in paths else getattr(current, name) or "" for name in _CONTACT_FIELDS
    })  # fmt: skip
    cleared = {name: "" for name, url in _SECRETS.items() if url in paths and not getattr(given, url)
               and name not in paths}  # fmt: skip
    return replace(merged, **cleared)


def parse_contact_id(raw: str, field: str = "id") -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidArgument([(field, f"not a contact id (a UUID): {raw[:64]!r}")]) from None


def _subject(contact_id: str) -> str:
    return f"contact:{contact_id}"


class ContactUseCases:
    def __init__(self, event_log: EventLog, vault: Vault, *, allow_custom_webhooks: bool = False) -> None:
        self._log = event_log
        self._vault = vault
        self._allow_custom_webhooks = allow_custom_webhooks

    # -- commands -------------------------------------------------------------------------

    async def create(self, principal: auth.Principal, given: ContactInput) -> ContactRow:
        contact = self._validated(given)
        contact_id = str(uuid.uuid4())
        async with self._log.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT count(*) FROM inventory_contacts WHERE account_id = %s",
                                     (principal.account_id,))  # fmt: skip
            row = await cur.fetchone()
            if row and row[0] >= MAX_CONTACTS_PER_ACCOUNT:
                raise FailedPrecondition(f"an account has at most {MAX_CONTACTS_PER_ACCOUNT} contacts")
            cursor = await self._append(conn, principal, contact_id, contact, cc.CONTACT_CREATED, 0)
        await catch_up_past(self._log, cv.CONTACT_VIEW, cursor)
        return await self.get(principal, contact_id)

    async def update(
        self, principal: auth.Principal, contact_id: str, given: ContactInput, paths: Sequence[str] = ()
    ) -> ContactRow:
        """`paths`: the fields to change (a field mask); none: replace them all."""
        contact_id = parse_contact_id(contact_id)
        async with self._log.pool.connection() as conn, conn.transaction():
            current = await self._open(conn, principal, contact_id)
            contact = self._validated(merged_update(current, given, paths))
            version = len(await self._log.read_stream(cc.stream_id(contact_id), conn=conn))
            cursor = await self._append(conn, principal, contact_id, contact, cc.CONTACT_UPDATED, version)
        await catch_up_past(self._log, cv.CONTACT_VIEW, cursor)
        return await self.get(principal, contact_id)

    async def delete(self, principal: auth.Principal, contact_id: str, *, detach: bool = False) -> list[str]:
        """Delete and shred the contact; `detach` first removes it from the domains using
        it (refused otherwise). Returns the domains it was removed from."""
        contact_id = parse_contact_id(contact_id)
        await catch_up_now(self._log, views.DOMAIN_VIEW)  # the domains using it, as of now
        async with self._log.pool.connection() as conn, conn.transaction():
            await self._open(conn, principal, contact_id)
            using = await self._domains_using(conn, principal, contact_id)
            if using and not detach:
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
        return using

    # -- queries --------------------------------------------------------------------------

    async def get(self, principal: auth.Principal, contact_id: str) -> ContactRow:
        contact_id = parse_contact_id(contact_id)
        await catch_up_now(self._log, views.DOMAIN_VIEW)  # its domains, as of now
        async with self._log.pool.connection() as conn:
            return await self._row(conn, principal, contact_id)

    async def list_all(self, principal: auth.Principal) -> list[ContactRow]:
        """The account's contacts, oldest first."""
        await catch_up_now(self._log, views.DOMAIN_VIEW)
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT contact_id FROM inventory_contacts WHERE account_id = %s ORDER BY created_at",
                (principal.account_id,),
            )
            ids = [str(r[0]) for r in await cur.fetchall()]
            return [await self._row(conn, principal, i) for i in ids]

    async def resolve(self, conn: Conn, principal: auth.Principal, refs: Sequence[str]) -> tuple[str, ...]:
        """Contact ids or names of the principal's account → ids; unknown ones are an error
        (`domain_use_cases.ContactResolver`)."""
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

    # -- helpers --------------------------------------------------------------------------

    def _validated(self, given: ContactInput) -> Contact:
        values = {name: getattr(given, name) or None for name in _CONTACT_FIELDS}
        try:
            return validate_contact(
                given.name, values.pop("phone"), values.pop("email"), values.pop("dingtalk_webhook"),
                values.pop("dingtalk_secret"), allow_custom_webhook_hosts=self._allow_custom_webhooks,
                **{k: v for k, v in values.items() if k != "name"},
            )  # fmt: skip
        except ValidationError as exc:
            raise InvalidArgument([(f"contact.{f}", desc) for f, desc in exc.field_descriptions()]) from exc

    async def _append(
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

    async def _row(self, conn: Conn, principal: auth.Principal, contact_id: str) -> ContactRow:
        contact = await self._open(conn, principal, contact_id)
        return ContactRow(
            id=contact_id, name=contact.name, phone=contact.phone, email=contact.email,
            dingtalk_webhook=contact.dingtalk_webhook, has_dingtalk_secret=contact.dingtalk_secret is not None,
            domain_ids=tuple(await self._domains_using(conn, principal, contact_id)),
            wecom_webhook=contact.wecom_webhook, lark_webhook=contact.lark_webhook,
            has_lark_secret=contact.lark_secret is not None, webhook_url=contact.webhook_url,
            has_webhook_secret=contact.webhook_secret is not None, has_apprise_url=contact.apprise_url is not None,
        )  # fmt: skip
