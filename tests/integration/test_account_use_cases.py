"""The inventory's contact, quota and account use cases run as plain Python, no gRPC: what
the coming HTTP API and console call. Typed inputs in, typed rows out, the platform's
errors for refusals (`platform.error_codes` maps each once, for gRPC and HTTP)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.inventory import account_use_cases as au
from certwatch.inventory import contact_use_cases as cu
from certwatch.inventory import domain_use_cases as uc
from certwatch.inventory import quota_use_cases as qu
from certwatch.platform import auth
from certwatch.platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import Vault
from tests.support.probe_results import NOW

HOOK = "https://oapi.dingtalk.com/robot/send?access_token=abcdefghijklmnop"


@pytest.fixture
async def admin(pool: AsyncConnectionPool[Any]) -> auth.Principal:
    account_id, _ = await auth.create_account(pool, f"admin-{uuid.uuid4().hex[:8]}", role="admin")
    return auth.Principal(account_id, "admin-key", "admin")


async def test_accounts_and_keys_without_a_transport(event_log: EventLog, admin: auth.Principal) -> None:
    accounts = au.AccountUseCases(event_log)
    name = f"customer-{uuid.uuid4().hex[:8]}"
    created = await accounts.create_account(admin, f"  {name} ")
    keys = auth.KeyVerifier(event_log.pool)  # no revocation feed: every call asks the database
    user = await keys.verify(f"Bearer {created.api_key}")
    assert (user.account_id, user.key_id, user.is_admin) == (created.account_id, created.key_id, False)
    with pytest.raises(AlreadyExists, match=name):
        await accounts.create_account(admin, name)
    with pytest.raises(InvalidArgument, match="name"):
        await accounts.create_account(admin, " ")
    with pytest.raises(auth.PermissionDenied):  # a user creates no account, nor another's key
        await accounts.create_account(user, "mine")
    with pytest.raises(auth.PermissionDenied):
        await accounts.create_api_key(user, str(admin.account_id))

    second = await accounts.create_api_key(user)
    assert (await keys.verify(f"Bearer {second.api_key}")).account_id == created.account_id
    assert (await accounts.create_api_key(admin, str(created.account_id))).account_id == created.account_id
    with pytest.raises(NotFound):
        await accounts.create_api_key(admin, str(uuid.uuid4()))
    with pytest.raises(InvalidArgument, match="account_id"):
        await accounts.create_api_key(admin, "not-a-uuid")
    await accounts.revoke_api_key(user, second.key_id)
    with pytest.raises(auth.Unauthenticated):
        await keys.verify(f"Bearer {second.api_key}")
    with pytest.raises(NotFound):  # revoked already
        await accounts.revoke_api_key(user, second.key_id)


async def test_quota_purchase_and_view_without_a_transport(
    event_log: EventLog, admin: auth.Principal
) -> None:
    account_id, _ = await auth.create_account(event_log.pool, f"buyer-{uuid.uuid4().hex[:8]}")
    buyer = auth.Principal(account_id, "buyer-key", "user")
    quota = qu.QuotaUseCases(event_log, clock=lambda: NOW)
    assert (await quota.get(buyer)).purchased_units == 0
    with pytest.raises(auth.PermissionDenied):
        await quota.purchase(buyer, qu.Purchase(str(account_id), domain_count=10))
    with pytest.raises(InvalidArgument, match="domain_count"):
        await quota.purchase(admin, qu.Purchase(str(account_id), domain_count=0))
    with pytest.raises(NotFound):
        await quota.purchase(admin, qu.Purchase(str(uuid.uuid4()), domain_count=10))
    view = await quota.purchase(admin, qu.Purchase(str(account_id), domain_count=10, quantity=0, years=2))
    assert (view.account_id, view.purchased_units, view.remaining_units) == (str(account_id), 20, 20)

    domains = uc.DomainUseCases(event_log, cu.ContactUseCases(event_log, Vault(os.urandom(32))).resolve,
                                clock=lambda: NOW)  # fmt: skip
    added = await domains.add(buyer, uc.AddDomains(domains="q.example.test", enable=True))
    assert added[0].domain is not None
    mine = await quota.get(buyer, ending_within_days=365)
    assert mine.reserved_units == 1 and mine.remaining_units == 19
    with pytest.raises(InvalidArgument, match="ending_within_days"):
        await quota.get(buyer, ending_within_days=366)


async def test_contacts_without_a_transport(event_log: EventLog, pool: AsyncConnectionPool[Any]) -> None:
    account_id, _ = await auth.create_account(pool, f"contacts-{uuid.uuid4().hex[:8]}")
    owner = auth.Principal(account_id, "owner-key", "user")
    contacts = cu.ContactUseCases(event_log, Vault(os.urandom(32)))
    ops = await contacts.create(owner, cu.ContactInput(name="Ops", email="ops@example.com",
                                                       dingtalk_webhook=HOOK, dingtalk_secret="SECabc"))  # fmt: skip
    assert (ops.name, ops.email, ops.phone, ops.has_dingtalk_secret) == ("Ops", "ops@example.com", None, True)
    with pytest.raises(InvalidArgument, match=r"contact\.email"):
        await contacts.create(owner, cu.ContactInput(name="Bad", email="not-an-address"))

    renamed = await contacts.update(owner, ops.id, cu.ContactInput(name="Ops 2"), ["name"])
    assert (renamed.name, renamed.email, renamed.has_dingtalk_secret) == ("Ops 2", "ops@example.com", True)
    async with pool.connection() as conn:  # domains name contacts by id or by name
        assert await contacts.resolve(conn, owner, ["ops 2"]) == await contacts.resolve(conn, owner, [ops.id])
        with pytest.raises(InvalidArgument, match="no such contact"):
            await contacts.resolve(conn, owner, ["nobody"])

    domains = uc.DomainUseCases(event_log, contacts.resolve, clock=lambda: NOW)
    added = await domains.add(owner, uc.AddDomains(domains="c.example.test", contact_ids=("Ops 2",)))
    domain = added[0].domain
    assert domain is not None and domain.contact_ids == (ops.id,)
    assert [c.domain_ids for c in await contacts.list_all(owner)] == [(domain.id,)]
    with pytest.raises(FailedPrecondition, match="used by 1 domain"):
        await contacts.delete(owner, ops.id)
    assert await contacts.delete(owner, ops.id, detach=True) == [domain.id]
    assert (await domains.get(owner, domain.id)).contact_ids == ()
    with pytest.raises(NotFound):
        await contacts.get(owner, ops.id)
    with pytest.raises(InvalidArgument, match="id"):
        await contacts.get(owner, "nope")
    other = auth.Principal(uuid.uuid4(), "other", "user")  # another account sees nothing
    assert await contacts.list_all(other) == []
