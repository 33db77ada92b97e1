"""Failing fast and refusing cleanly: a database that is down, bytes that are not a
message, and a key revoked while every service holds it in its cache."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from certwatch.platform import localstack
from certwatch.platform.config import Settings
from certwatch.platform.localstack import Nats
from certwatch.v1 import classifier_pb2, classifier_pb2_grpc, inventory_pb2_grpc
from certwatch.v1 import inventory_pb2 as pb
from tests.support.stack import Stack, running_stack, wait_for

FAST_S = 3.0  # "within a second or two", with room for a loaded machine


@pytest.fixture
async def stack(database_url: str, nats_server: Nats) -> AsyncIterator[Stack]:
    settings = Settings(database_url=database_url, nats_url=nats_server.url, log_format="text",
                        shutdown_grace_s=2)  # fmt: skip
    async with running_stack(settings, names=("inventory", "classifier")) as s:
        yield s


@pytest.fixture
def own_postgres(stack_root: Path) -> Iterator[localstack.Postgres]:
    """A PostgreSQL of this test's own, which it stops and starts again."""
    data = stack_root / f"pg-outage-{uuid.uuid4().hex[:8]}"
    pg = localstack.Postgres(data, localstack.free_port(), fast_unsafe=True)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)


async def _code(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_an_rpc_answers_unavailable_at_once_while_postgres_is_down(
    own_postgres: localstack.Postgres, nats_server: Nats
) -> None:
    settings = Settings(database_url=own_postgres.url, nats_url=nats_server.url, log_format="text",
                        shutdown_grace_s=2)  # fmt: skip
    async with running_stack(settings, names=("inventory", "classifier")) as s:
        inventory = inventory_pb2_grpc.InventoryStub(s.channel("inventory"))
        classifier = classifier_pb2_grpc.ClassifierStub(s.channel("classifier"))

        def list_domains() -> object:
            return inventory.ListDomains(pb.ListDomainsRequest(), metadata=s.metadata, timeout=30)

        assert await _code(list_domains()) == grpc.StatusCode.OK
        own_postgres.stop()
        # The first calls meet pooled connections the server closed; later ones find the pool
        # empty and reconnecting: each path must answer UNAVAILABLE at once, never hang.
        for _ in range(4):
            for call in (list_domains, lambda: classifier.GetStatus(classifier_pb2.StatusRequest(domain_id="x"),
                                                                     metadata=s.metadata, timeout=30)):  # fmt: skip
                started = time.monotonic()
                code = await _code(call())
                elapsed = time.monotonic() - started
                assert (code, elapsed < FAST_S) == (grpc.StatusCode.UNAVAILABLE, True), elapsed

        own_postgres.start()

        async def recovered() -> bool:
            return await _code(list_domains()) == grpc.StatusCode.OK

        await wait_for(recovered, timeout=30, every=0.2)


async def _raw(stack: Stack, method: str, payload: bytes) -> grpc.aio.AioRpcError:
    call = stack.channel("inventory").unary_unary(f"/certwatch.v1.Inventory/{method}")  # bytes in, bytes out
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(payload, metadata=stack.metadata, timeout=10)
    return info.value


def _violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            bad = error_details_pb2.BadRequest()
            assert status_pb2.Status.FromString(value).details[0].Unpack(bad)
            return [(v.field, v.description) for v in bad.field_violations]
    return []


@pytest.mark.parametrize(
    ("method", "payload", "field", "rule"),
    [
        ("ListDomains", b"\xff\xff\xff\xff", "request", "truncated or overlong varint"),
        ("ListDomains", b"\x12\x40abc", "page_token", "runs past the end"),
        ("CreateAccount", b"\x0a\x02\xff\xfe", "name", "not valid UTF-8"),
        ("UpdateContact", b"\x12\x04\x1a\x02\xc3\x28", "contact.email", "not valid UTF-8"),
    ],
)
async def test_undecodable_requests_are_invalid_argument(
    stack: Stack, method: str, payload: bytes, field: str, rule: str
) -> None:
    err = await _raw(stack, method, payload)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert field in (err.details() or "") and rule in (err.details() or "")
    [(named, description)] = _violations(err)
    assert named == field and rule in description


async def test_garbage_from_a_caller_without_a_key_is_unauthenticated(stack: Stack) -> None:
    call = stack.channel("inventory").unary_unary("/certwatch.v1.Inventory/ListDomains")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(b"\xff\xff", timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_revoked_key_is_refused_by_every_service_at_once(stack: Stack) -> None:
    inventory = inventory_pb2_grpc.InventoryStub(stack.channel("inventory"))
    classifier = classifier_pb2_grpc.ClassifierStub(stack.channel("classifier"))
    for service in stack.services.values():
        await wait_for(lambda v=service.verifier: _true(v is not None and v.live))
    for _ in range(20):  # the race a cache would lose is short: try it many times
        created = await inventory.CreateApiKey(pb.CreateApiKeyRequest(), metadata=stack.metadata)
        md = (("authorization", f"Bearer {created.api_key}"),)
        status = classifier_pb2.StatusRequest(domain_id="00000000-0000-0000-0000-000000000000")
        # Both services now hold the key in their caches.
        assert await _code(classifier.GetStatus(status, metadata=md)) != grpc.StatusCode.UNAUTHENTICATED
        assert await _code(inventory.ListDomains(pb.ListDomainsRequest(), metadata=md)) == grpc.StatusCode.OK
        await inventory.RevokeApiKey(pb.RevokeApiKeyRequest(key_id=created.key_id), metadata=stack.metadata)
        assert await _code(classifier.GetStatus(status, metadata=md)) == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(inventory.ListDomains(pb.ListDomainsRequest(), metadata=md)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )


async def _true(value: bool) -> bool:
    return value
