"""Contact RPCs of the Inventory API: a thin adapter from gRPC messages to the use cases
(`contact_use_cases`) and back. Nothing here decides anything."""

from __future__ import annotations

import dataclasses
from typing import Any

from certwatch.inventory import contact_use_cases as cu
from certwatch.platform import auth
from certwatch.v1 import inventory_pb2 as pb


class ContactHandlers:
    _contacts: cu.ContactUseCases

    async def CreateContact(self, request: pb.ContactInput, context: Any) -> pb.Contact:
        return _contact(await self._contacts.create(auth.current(), _input(request)))

    async def UpdateContact(self, request: pb.UpdateContactRequest, context: Any) -> pb.Contact:
        row = await self._contacts.update(
            auth.current(), request.id, _input(request.contact), list(request.update_mask.paths)
        )
        return _contact(row)

    async def GetContact(self, request: pb.ContactRef, context: Any) -> pb.Contact:
        return _contact(await self._contacts.get(auth.current(), request.id))

    async def ListContacts(self, request: pb.ListContactsRequest, context: Any) -> pb.ListContactsResponse:
        return pb.ListContactsResponse(
            contacts=[_contact(r) for r in await self._contacts.list_all(auth.current())]
        )

    async def DeleteContact(self, request: pb.DeleteContactRequest, context: Any) -> pb.DeleteContactResponse:
        detached = await self._contacts.delete(auth.current(), request.id, detach=request.detach)
        return pb.DeleteContactResponse(detached_domain_ids=detached)


def _input(given: pb.ContactInput) -> cu.ContactInput:
    return cu.ContactInput(**{f.name: getattr(given, f.name) for f in dataclasses.fields(cu.ContactInput)})


def _contact(r: cu.ContactRow) -> pb.Contact:
    return pb.Contact(
        id=r.id, name=r.name, phone=r.phone or "", email=r.email or "", dingtalk_webhook=r.dingtalk_webhook or "",
        has_dingtalk_secret=r.has_dingtalk_secret, domain_ids=r.domain_ids, wecom_webhook=r.wecom_webhook or "",
        lark_webhook=r.lark_webhook or "", has_lark_secret=r.has_lark_secret, webhook_url=r.webhook_url or "",
        has_webhook_secret=r.has_webhook_secret, has_apprise_url=r.has_apprise_url,
    )  # fmt: skip
