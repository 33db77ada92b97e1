"""The Inventory API as users live in it: domains, CSV, contacts, quota, accounts, and the
guarantee that one account can never see or touch another's data through any RPC."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2, status_pb2

from certwatch.platform import auth, db
from certwatch.platform.config import Settings
from certwatch.platform.localstack import Nats
from certwatch.services import MIGRATIONS
from certwatch.v1 import classifier_pb2, classifier_pb2_grpc, inventory_pb2_grpc
from certwatch.v1 import inventory_pb2 as pb
from tests.support.stack import Stack, new_account, running_stack, wait_for

WEBHOOK = "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789abcdef"


@pytest.fixture
async def stack(database_url: str, nats_server: Nats) -> AsyncIterator[Stack]:
    settings = Settings(database_url=database_url, nats_url=nats_server.url, log_format="text",
                        shutdown_grace_s=2)  # fmt: skip
    async with running_stack(settings, names=("inventory", "classifier")) as s:
        yield s


class Client:
    def __init__(self, stack: Stack, key: str) -> None:
        self.channel = stack.channel("inventory")
        self.inv = inventory_pb2_grpc.InventoryStub(self.channel)
        self.cls = classifier_pb2_grpc.ClassifierStub(stack.channel("classifier"))
        self.md = (("authorization", f"Bearer {key}"),)

    async def __call__(self, method: str, request: Any) -> Any:
        return await getattr(self.inv, method)(request, metadata=self.md)


def _violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            bad = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(bad)
            return [(v.field, v.description) for v in bad.field_violations]
    return []


async def _fails(code: grpc.StatusCode, coro: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    assert info.value.code() == code, info.value.details()
    return info.value


async def test_add_list_csv_and_validation(stack: Stack) -> None:
    c = Client(stack, stack.api_key)
    added = await c("AddDomains", pb.AddDomainsRequest(
        domains="a.example.com, B.Example.com:8443, *.wild.com, foo.id, a.example.com, bücher.de, web.example.com:80"))  # fmt: skip
    by_entry = {r.entry: r for r in reversed(added.results)}  # the first of a repeated entry
    assert "duplicate" in added.results[4].error
    assert by_entry["a.example.com"].added and by_entry["a.example.com"].domain.status == "NOT_ENABLED"
    assert by_entry["B.Example.com:8443"].domain.host == "b.example.com"
    assert not by_entry["*.wild.com"].added and "wildcard" in by_entry["*.wild.com"].error
    assert not by_entry["foo.id"].added
    assert by_entry["bücher.de"].domain.host == "xn--bcher-kva.de"
    assert by_entry["web.example.com:80"].added and by_entry["web.example.com:80"].warnings
    assert sum(r.added for r in added.results) == 4

    again = await c("AddDomains", pb.AddDomainsRequest(domains="a.example.com"))
    assert not again.results[0].added
    assert again.results[0].existing_domain_id == by_entry["a.example.com"].domain.id

    csv = (
        b"domain,port,contacts,enable\ncsv1.example.com,443,,no\nbad host,443,,no\ncsv2.example.com,8443,,\n"
    )
    imported = await c("AddDomains", pb.AddDomainsRequest(csv=csv))
    assert [r.added for r in imported.results] == [True, False, True]
    assert imported.results[1].row == 3 and imported.results[1].error

    err = await _fails(
        grpc.StatusCode.INVALID_ARGUMENT, c("AddDomains", pb.AddDomainsRequest(domains="x.com", port=70000))
    )
    assert _violations(err)[0][0] == "port"
    err = await _fails(grpc.StatusCode.INVALID_ARGUMENT, c("AddDomains", pb.AddDomainsRequest(domains="")))
    assert _violations(err)[0][0] == "domains"
    err = await _fails(grpc.StatusCode.INVALID_ARGUMENT, c("AddDomains", pb.AddDomainsRequest(
        domains="x.com", contact_ids=[str(uuid.uuid4()) for _ in range(4)])))  # fmt: skip
    assert _violations(err)[0][0] == "contact_ids"

    page1 = await c("ListDomains", pb.ListDomainsRequest(page_size=3))
    page2 = await c("ListDomains", pb.ListDomainsRequest(page_size=3, page_token=page1.next_page_token))
    hosts = [d.host for d in [*page1.domains, *page2.domains]]
    assert hosts == sorted(hosts) and len(hosts) == 6 and not page2.next_page_token
    found = await c("ListDomains", pb.ListDomainsRequest(search="csv"))
    assert {d.host for d in found.domains} == {"csv1.example.com", "csv2.example.com"}
    await _fails(grpc.StatusCode.INVALID_ARGUMENT, c("ListDomains", pb.ListDomainsRequest(page_token="nope")))
    # nothing stored was lost by the rejected requests
    assert len((await c("ListDomains", pb.ListDomainsRequest())).domains) == 6


async def test_quota_is_reserved_at_enable_and_refused_when_exhausted(stack: Stack) -> None:
    """No prober runs here: enable checks stay pending, so their units stay reserved."""
    account_id, key = await new_account(stack.settings.database_url, "small", units=1)
    c = Client(stack, key)

    async def units() -> tuple[int, int, int, int]:
        q = await c("GetQuota", pb.GetQuotaRequest())
        return q.purchased_units, q.consumed_units, q.reserved_units, q.remaining_units

    added = await c("AddDomains", pb.AddDomainsRequest(domains="q1.example.com, q2.example.com"))
    first, second = (r.domain.id for r in added.results)
    enabled = await c("EnableMonitoring", pb.DomainRef(id=first))
    # the 365 days start with monitoring, when the enable check passes
    assert enabled.status == "ENABLING" and not enabled.HasField("service_ends_at")
    assert await units() == (1, 0, 1, 0)
    err = await _fails(grpc.StatusCode.FAILED_PRECONDITION, c("EnableMonitoring", pb.DomainRef(id=second)))
    assert "quota" in err.details().lower() and "reserved" in err.details().lower()
    await c("DisableMonitoring", pb.DomainRef(id=first))  # before its check: the unit goes back
    assert await units() == (1, 0, 0, 1)
    again = await c("EnableMonitoring", pb.DomainRef(id=first))
    assert again.monitoring_enabled
    assert await units() == (1, 0, 1, 0)

    await _fails(grpc.StatusCode.PERMISSION_DENIED, c("PurchasePackage", pb.PurchasePackageRequest(
        account_id=account_id, domain_count=5)))  # fmt: skip
    admin = Client(stack, stack.api_key)
    await _fails(grpc.StatusCode.PERMISSION_DENIED, admin("PurchasePackage", pb.PurchasePackageRequest(
        account_id=account_id, domain_count=5)))  # the stack's account is not an admin  # fmt: skip
    pool = await db.open_pool(stack.settings.database_url, migrate=MIGRATIONS)
    try:
        _, admin_key = await auth.create_account(pool, "operator", role="admin")
    finally:
        await pool.close()
    operator = Client(stack, admin_key)
    bought = await operator(
        "PurchasePackage", pb.PurchasePackageRequest(account_id=account_id, domain_count=5, years=2)
    )
    assert (bought.purchased_units, bought.reserved_units, bought.remaining_units) == (11, 1, 10)
    assert (await c("EnableMonitoring", pb.DomainRef(id=second))).monitoring_enabled
    await _fails(grpc.StatusCode.INVALID_ARGUMENT, operator("PurchasePackage", pb.PurchasePackageRequest(
        account_id=account_id, domain_count=0)))  # fmt: skip
    await _fails(grpc.StatusCode.NOT_FOUND, operator("PurchasePackage", pb.PurchasePackageRequest(
        account_id=str(uuid.uuid4()), domain_count=1)))  # fmt: skip


async def test_contacts_crud_detach_and_crypto_shredding(stack: Stack) -> None:
    c = Client(stack, stack.api_key)
    err = await _fails(
        grpc.StatusCode.INVALID_ARGUMENT, c("CreateContact", pb.ContactInput(name="", email="bad"))
    )
    assert {f for f, _ in _violations(err)} >= {"contact.name"}
    ops = await c("CreateContact", pb.ContactInput(name="Ops", email="ops@example.com", phone="+86 138 0000 0000",
                                                   dingtalk_webhook=WEBHOOK, dingtalk_secret="SECabc123"))  # fmt: skip
    assert ops.has_dingtalk_secret and ops.email == "ops@example.com"
    added = await c("AddDomains", pb.AddDomainsRequest(domains="c.example.com", contact_ids=[ops.id]))
    domain = added.results[0].domain
    assert list(domain.contact_ids) == [ops.id]
    by_name = await c("AddDomains", pb.AddDomainsRequest(csv=b"domain,contacts\nd.example.com,ops\n"))
    assert list(by_name.results[0].domain.contact_ids) == [ops.id]

    await _fails(grpc.StatusCode.FAILED_PRECONDITION, c("DeleteContact", pb.DeleteContactRequest(id=ops.id)))
    gone = await c("DeleteContact", pb.DeleteContactRequest(id=ops.id, detach=True))
    assert set(gone.detached_domain_ids) == {domain.id, by_name.results[0].domain.id}
    assert list((await c("GetDomain", pb.GetDomainRequest(id=domain.id))).contact_ids) == []
    await _fails(grpc.StatusCode.NOT_FOUND, c("GetContact", pb.ContactRef(id=ops.id)))

    # The event log still holds the ContactCreated event, but nothing in it reads in clear,
    # and its key is gone.
    async with await psycopg.AsyncConnection.connect(stack.settings.database_url) as conn:
        rows = await (await conn.execute(
            "SELECT data::text FROM events WHERE stream_id = %s", (f"contact-{ops.id}",))).fetchall()  # fmt: skip
        assert rows and all("ops@example.com" not in r[0] and "SECabc123" not in r[0] for r in rows)
        keys = await (await conn.execute("SELECT count(*) FROM subject_keys WHERE subject = %s",
                                         (f"contact:{ops.id}",))).fetchone()  # fmt: skip
        assert keys == (0,)


async def test_account_isolation_through_every_rpc(stack: Stack) -> None:
    a = Client(stack, stack.api_key)
    _, key_b = await new_account(stack.settings.database_url, "other")
    b = Client(stack, key_b)
    contact = await a("CreateContact", pb.ContactInput(name="A ops", email="a@example.com"))
    domain = (await a("AddDomains", pb.AddDomainsRequest(domains="iso.example.com", enable=True,
                                                         contact_ids=[contact.id]))).results[0].domain  # fmt: skip
    nf = grpc.StatusCode.NOT_FOUND
    await _fails(nf, b("GetDomain", pb.GetDomainRequest(id=domain.id)))
    await _fails(nf, b("EnableMonitoring", pb.DomainRef(id=domain.id)))
    await _fails(nf, b("DisableMonitoring", pb.DomainRef(id=domain.id)))
    await _fails(nf, b("EditDomain", pb.EditDomainRequest(id=domain.id, port=8443)))
    await _fails(nf, b("RemoveDomain", pb.DomainRef(id=domain.id)))
    await _fails(nf, b("GetContact", pb.ContactRef(id=contact.id)))
    await _fails(
        nf,
        b(
            "UpdateContact",
            pb.UpdateContactRequest(id=contact.id, contact=pb.ContactInput(name="x", email="x@example.com")),
        ),
    )
    await _fails(nf, b("DeleteContact", pb.DeleteContactRequest(id=contact.id, detach=True)))
    await _fails(grpc.StatusCode.INVALID_ARGUMENT, b("AddDomains", pb.AddDomainsRequest(
        domains="mine.example.com", contact_ids=[contact.id])))  # A's contact is unknown to B  # fmt: skip
    assert not (await b("ListDomains", pb.ListDomainsRequest())).domains
    assert not (await b("ListContacts", pb.ListContactsRequest())).contacts
    assert not (await b("GetQuota", pb.GetQuotaRequest(ending_within_days=365))).ending_soon
    # B may add the same host:port for itself: uniqueness is per account.
    assert (await b("AddDomains", pb.AddDomainsRequest(domains="iso.example.com"))).results[0].added
    await _fails(
        grpc.StatusCode.PERMISSION_DENIED,
        b("CreateApiKey", pb.CreateApiKeyRequest(account_id=stack.account_id)),
    )
    key_id_a = stack.api_key.split("_")[1]
    await _fails(nf, b("RevokeApiKey", pb.RevokeApiKeyRequest(key_id=key_id_a)))
    await _fails(nf, b.cls.GetStatus(classifier_pb2.StatusRequest(domain_id=domain.id), metadata=b.md))
    await _fails(
        nf, b.cls.ListStatusHistory(classifier_pb2.StatusRequest(domain_id=domain.id), metadata=b.md)
    )
    # A's data is intact after all of B's attempts.
    still = await a("GetDomain", pb.GetDomainRequest(id=domain.id))
    assert still.monitoring_enabled and list(still.contact_ids) == [contact.id] and still.port == 443
    assert (await a("GetContact", pb.ContactRef(id=contact.id))).email == "a@example.com"


async def test_api_keys_revocation_and_bad_tokens(stack: Stack) -> None:
    c = Client(stack, stack.api_key)
    created = await c("CreateApiKey", pb.CreateApiKeyRequest())
    extra = Client(stack, created.api_key)
    assert (await extra("ListDomains", pb.ListDomainsRequest())) is not None
    await c("RevokeApiKey", pb.RevokeApiKeyRequest(key_id=created.key_id))

    async def refused() -> bool:
        try:
            await extra("ListDomains", pb.ListDomainsRequest())
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
        return False

    await wait_for(refused, timeout=5)
    for token in ("", "Bearer nope", f"Bearer {stack.api_key[:-1]}x", "Basic abc"):
        md = (("authorization", token),) if token else ()
        await _fails(grpc.StatusCode.UNAUTHENTICATED, c.inv.ListDomains(pb.ListDomainsRequest(), metadata=md))
