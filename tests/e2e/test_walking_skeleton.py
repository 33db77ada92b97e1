"""One real domain end to end: AddDomains → event log → outbox → JetStream → prober →
classifier → ListDomains, against TLS servers this test starts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.settled import assert_rebuilds_equal_live
from tests.support.stack import running_stack, wait_for
from tests.support.tls_server import closed_port, server_context, tls_server


async def test_domains_flow_from_add_to_status(settings: Settings, pki: TestPKI) -> None:
    now = datetime.now(UTC)
    good = pki.server_files(pki.leaf("good.test", org="Good Org"))
    expired = pki.server_files(pki.leaf(
        "expired.test", not_before=now - timedelta(days=90), not_after=now - timedelta(days=1)
    ))  # fmt: skip
    with (
        tls_server(server_context(*good)) as good_port,
        tls_server(server_context(*expired)) as expired_port,
        closed_port() as down_port,
    ):
        resolve = (f"good.test:{good_port}:127.0.0.1", f"expired.test:{expired_port}:127.0.0.1",
                   f"down.test:{down_port}:127.0.0.1", f"down.test:{good_port}:127.0.0.1")  # fmt: skip
        async with (
            running_stack(replace(settings, resolve_overrides=resolve)) as stack,
            stack.channel("inventory") as channel,
        ):
            inventory = inventory_pb2_grpc.InventoryStub(channel)
            added = await inventory.AddDomains(
                pb.AddDomainsRequest(
                    domains=f"good.test:{good_port}, expired.test:{expired_port}, down.test:{down_port}",
                    enable=True,
                ),
                metadata=stack.metadata,
            )
            assert [r.added for r in added.results] == [True, True, True], added
            assert {r.domain.status for r in added.results} == {"ENABLING"}

            # The first check of down.test happens at enable time: ENABLE_FAILED.
            async def settled() -> dict[str, pb.Domain] | None:
                listed = await inventory.ListDomains(pb.ListDomainsRequest(), metadata=stack.metadata)
                by_host = {x.host: x for x in listed.domains}
                return by_host if all(x.status != "ENABLING" for x in by_host.values()) else None

            by_host = await wait_for(settled, timeout=15)
            assert by_host["good.test"].status == "SECURE"
            assert by_host["good.test"].brand == "certwatch Test Issuing"
            assert by_host["good.test"].has_days_left
            assert by_host["expired.test"].status == "ABNORMAL"
            assert by_host["expired.test"].primary_cause == "EXPIRED"
            assert by_host["down.test"].status == "ENABLE_FAILED"
            assert by_host["down.test"].primary_cause == "CONNECTION_FAILURE"

            # Edit and retry, as the seed says: the new port is checked at once, as an enable.
            edited = await inventory.EditDomain(
                pb.EditDomainRequest(id=by_host["down.test"].id, port=good_port), metadata=stack.metadata
            )
            assert edited.status == "ENABLING"

            async def retried() -> pb.Domain | None:
                got = await inventory.GetDomain(pb.GetDomainRequest(id=edited.id), metadata=stack.metadata)
                return got if got.status != "ENABLING" else None

            retry = await wait_for(retried, timeout=15)
            assert (retry.status, retry.primary_cause) == ("ABNORMAL", "CERTIFICATE_MISMATCH")

            filtered = await inventory.ListDomains(
                pb.ListDomainsRequest(status="ABNORMAL", cause="EXPIRED"), metadata=stack.metadata
            )
            assert [d.host for d in filtered.domains] == ["expired.test"]

            # Every projection rebuilt from position 0 equals the live one.
            await assert_rebuilds_equal_live(stack.settings.database_url)

            # Unauthenticated and cross-account calls are refused.
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await inventory.ListDomains(pb.ListDomainsRequest())
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
