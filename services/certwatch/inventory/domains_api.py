"""Domain RPCs of the Inventory API: a thin adapter from gRPC messages to the use cases
(`domain_use_cases`) and back. Nothing here decides anything."""

from __future__ import annotations

from typing import Any

from certwatch.inventory import domain_use_cases as uc
from certwatch.inventory.contacts_api import ContactHandlers
from certwatch.platform import auth
from certwatch.platform.timestamps import timestamp
from certwatch.v1 import inventory_pb2 as pb


class DomainHandlers(ContactHandlers):
    _domains: uc.DomainUseCases

    async def AddDomains(self, request: pb.AddDomainsRequest, context: Any) -> pb.AddDomainsResponse:
        command = uc.AddDomains(
            domains=request.domains, csv=request.csv, port=request.port or None,
            contact_ids=tuple(request.contact_ids), enable=request.enable,
        )  # fmt: skip
        outcomes = await self._domains.add(auth.current(), command)
        return pb.AddDomainsResponse(results=[
            pb.AddDomainResult(
                entry=o.entry, row=o.row, added=o.domain is not None, error=o.error,
                existing_domain_id=o.existing_domain_id, warnings=o.warnings,
                domain=_domain(o.domain) if o.domain else None,
            )
            for o in outcomes
        ])  # fmt: skip

    async def EnableMonitoring(self, request: pb.DomainRef, context: Any) -> pb.Domain:
        return await self._run(uc.Enable(request.id))

    async def DisableMonitoring(self, request: pb.DomainRef, context: Any) -> pb.Domain:
        return await self._run(uc.Disable(request.id))

    async def EditDomain(self, request: pb.EditDomainRequest, context: Any) -> pb.Domain:
        contacts = tuple(request.contact_ids) if request.set_contacts else None
        return await self._run(uc.Edit(request.id, port=request.port or None, contact_ids=contacts))

    async def RemoveDomain(self, request: pb.DomainRef, context: Any) -> pb.RemoveDomainResponse:
        await self._run(uc.Remove(request.id))
        return pb.RemoveDomainResponse()

    async def RecheckDomains(
        self, request: pb.RecheckDomainsRequest, context: Any
    ) -> pb.RecheckDomainsResponse:
        outcomes = await self._domains.recheck(auth.current(), list(request.ids))
        return pb.RecheckDomainsResponse(results=[
            pb.RecheckResult(id=o.id, code=o.code, error=o.error, domain=_domain(o.domain) if o.domain else None)
            for o in outcomes
        ])  # fmt: skip

    async def GetDomain(self, request: pb.GetDomainRequest, context: Any) -> pb.Domain:
        return _domain(await self._domains.get(auth.current(), request.id))

    async def ListDomains(self, request: pb.ListDomainsRequest, context: Any) -> pb.ListDomainsResponse:
        query = uc.ListQuery(
            page_size=request.page_size, page_token=request.page_token, status=request.status,
            cause=request.cause, max_days_left=request.max_days_left if request.has_max_days_left else None,
            search=request.search,
        )  # fmt: skip
        rows, token = await self._domains.page(auth.current(), query)
        return pb.ListDomainsResponse(domains=[_domain(r) for r in rows], next_page_token=token)

    async def _run(self, command: uc.DomainCommand) -> pb.Domain:
        row = await self._domains.run(auth.current(), command)
        return pb.Domain(id=command.domain_id) if row is None else _domain(row)


def _domain(r: uc.DomainRow) -> pb.Domain:
    domain = pb.Domain(
        id=r.id, host=r.host, port=r.port, monitoring_enabled=r.monitoring_enabled, status=r.status,
        primary_cause=r.primary_cause or "", causes=r.causes, brand=r.brand or "", contact_ids=r.contact_ids,
        recommended_action=r.recommended_action or "", stale=r.stale,
    )  # fmt: skip
    if r.days_left is not None:
        domain.days_left, domain.has_days_left = r.days_left, True
    for field_name, value in (("valid_from", r.valid_from), ("valid_to", r.valid_to), ("added_at", r.added_at),
                              ("first_enabled_at", r.first_enabled_at), ("service_ends_at", r.service_ends_on),
                              ("last_checked_at", r.last_checked_at)):  # fmt: skip
        stamp = timestamp(value)
        if stamp is not None:
            getattr(domain, field_name).CopyFrom(stamp)
    return domain
