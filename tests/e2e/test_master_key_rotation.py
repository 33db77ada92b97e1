"""Rotating CERTWATCH_MASTER_KEY across the services that seal or open data: a contact sealed
by inventory and a VOD AccessKey secret, read through the services' own APIs (inventory's
GetContact, the notifier's test message, a signed VOD request) after each restart."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import grpc
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkvod.request.v20170321.DescribeVodDomainCertificateInfoRequest import (
    DescribeVodDomainCertificateInfoRequest,
)

from certwatch.platform.config import Settings
from certwatch.platform.shredding import new_master_key, parse_master_key
from certwatch.v1 import (
    inventory_pb2,
    inventory_pb2_grpc,
    notifier_pb2,
    notifier_pb2_grpc,
    vod_pb2,
    vod_pb2_grpc,
)
from tests.support.stack import Stack, running_stack

SERVICES = ("inventory", "notifier", "vod")


async def _vod_code(stack: Stack, key: vod_pb2.CreatedAccessKey) -> tuple[int, str]:
    """A signed request for a domain nobody has: InvalidDomain.NotFound once the signature,
    made with the sealed secret, checked out."""
    client = AcsClient(key.access_key_id, key.access_key_secret, "cn-shanghai", auto_retry=False)
    request = DescribeVodDomainCertificateInfoRequest()
    request.set_DomainName("nosuch.test")
    request.set_endpoint(stack.vod_endpoint)
    request.set_protocol_type("http")
    with pytest.raises(ServerException) as err:
        await asyncio.to_thread(client.do_action_with_exception, request)
    return err.value.get_http_status(), err.value.get_error_code()


async def _reads(stack: Stack, api_key: str, contact_id: str, key: vod_pb2.CreatedAccessKey) -> None:
    """The contact and the AccessKey secret open, each through its service's API."""
    md = (("authorization", f"Bearer {api_key}"),)
    inventory = inventory_pb2_grpc.InventoryStub(stack.channel("inventory"))
    contact = await inventory.GetContact(inventory_pb2.ContactRef(id=contact_id), metadata=md)
    assert contact.email == "ops@example.com" and contact.phone == "+8613800000000"
    notifier = notifier_pb2_grpc.NotifierStub(stack.channel("notifier"))
    tested = await notifier.SendTestMessage(
        notifier_pb2.SendTestMessageRequest(contact_id=contact_id), metadata=md
    )
    assert tested.contact_id == contact_id
    assert await _vod_code(stack, key) == (404, "InvalidDomain.NotFound")


async def _refused(stack: Stack, api_key: str, contact_id: str, key: vod_pb2.CreatedAccessKey) -> None:
    """Nothing sealed under the old key opens without it."""
    md = (("authorization", f"Bearer {api_key}"),)
    inventory = inventory_pb2_grpc.InventoryStub(stack.channel("inventory"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inventory.GetContact(inventory_pb2.ContactRef(id=contact_id), metadata=md)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    notifier = notifier_pb2_grpc.NotifierStub(stack.channel("notifier"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notifier.SendTestMessage(
            notifier_pb2.SendTestMessageRequest(contact_id=contact_id), metadata=md
        )
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert (await _vod_code(stack, key))[0] == 500


async def test_sealed_data_survives_a_master_key_rotation(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = new_master_key(), new_master_key()
    async with running_stack(replace(settings, master_key=old), SERVICES) as stack:
        api_key, md = stack.api_key, stack.metadata
        inventory = inventory_pb2_grpc.InventoryStub(stack.channel("inventory"))
        contact = await inventory.CreateContact(
            inventory_pb2.ContactInput(name="Ops", email="ops@example.com", phone="+86 138 0000 0000"),
            metadata=md,
        )
        vod = vod_pb2_grpc.VodStub(stack.channel("vod"))
        key = await vod.CreateAccessKey(vod_pb2.CreateAccessKeyRequest(), metadata=md)
        await _reads(stack, api_key, contact.id, key)
    async with running_stack(replace(settings, master_key=new), SERVICES) as stack:
        await _refused(stack, api_key, contact.id, key)
    rotating = replace(settings, master_key=new, previous_master_keys=(parse_master_key(old),))
    with caplog.at_level(logging.INFO, logger="certwatch.platform.service_vault"):
        async with running_stack(rotating, SERVICES) as stack:
            await _reads(stack, api_key, contact.id, key)
    rewrapped = sorted(r.getMessage() for r in caplog.records if "rewrapped" in r.getMessage())
    assert rewrapped == [
        "inventory: 1 data keys rewrapped under the current master key",
        "vod: 1 data keys rewrapped under the current master key",
    ]  # the notifier seals nothing: it rewraps nothing
    async with running_stack(replace(settings, master_key=new), SERVICES) as stack:
        await _reads(stack, api_key, contact.id, key)  # the new key alone opens them now
