"""Monitoring Details through gRPC: the report of a live domain, a certificate renewal seen
as a "Domain Name Update", the chain stored once per change, and account isolation."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import grpc
import pytest
from cryptography.hazmat.primitives.hashes import SHA256

from certwatch.contracts import status as sc
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.v1 import classifier_pb2 as cpb
from certwatch.v1 import classifier_pb2_grpc, inventory_pb2_grpc
from certwatch.v1 import inventory_pb2 as ipb
from tests.support.pki import TestPKI
from tests.support.stack import new_account, running_stack, wait_for
from tests.support.tls_server import free_port_on, server_context, tls_server


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Probe every 0.3 s: the test watches several rounds."""
    return replace(settings, probe_interval_s=0.3)


async def _count(event_log: EventLog, stream: str, kind: str) -> int:
    return sum(e.type == kind for e in await event_log.read_stream(stream))


async def test_monitoring_details_follow_a_renewal(settings: Settings, pki: TestPKI) -> None:
    port = free_port_on(("127.0.0.1",))
    first, renewed = pki.leaf("site.test", org="Site"), pki.leaf("site.test", org="Site")
    stack_settings = replace(settings, resolve_overrides=(f"site.test:{port}:127.0.0.1",))
    async with running_stack(stack_settings) as stack:
        event_log = stack.services["classifier"].runtime.event_log  # type: ignore[union-attr]
        async with stack.channel("inventory") as ich, stack.channel("classifier") as cch:
            inventory = inventory_pb2_grpc.InventoryStub(ich)
            classifier = classifier_pb2_grpc.ClassifierStub(cch)
            with tls_server(server_context(*pki.server_files(first)), port=port):
                enabled_at = time.monotonic()
                added = await inventory.AddDomains(
                    ipb.AddDomainsRequest(domains=f"site.test:{port}", enable=True),
                    metadata=stack.metadata,
                )
                domain_id = added.results[0].domain.id
                request = cpb.StatusRequest(domain_id=domain_id)

                async def secure() -> cpb.MonitoringDetails | None:
                    try:
                        report = await classifier.GetMonitoringDetails(request, metadata=stack.metadata)
                    except grpc.aio.AioRpcError as exc:  # the details view has not seen it yet
                        if exc.code() != grpc.StatusCode.NOT_FOUND:
                            raise
                        return None
                    return report if report.details.status == "SECURE" else None

                report = await wait_for(secure, timeout=10)
                assert time.monotonic() - enabled_at < 5.0  # ENABLING -> first verdict
                assert report.details.port == port and report.details.enabled
                assert 0 < report.details.remaining_service_days <= 365
                assert report.ats.checked and getattr(report.ats, "pass")
                assert [(x.ip, x.status) for x in report.ip_content] == [("127.0.0.1", "SECURE")]
                [info] = report.certificates
                assert info.brand == "certwatch Test Issuing" and info.status == "VALID"
                assert info.certificate.subject == "CN=site.test,O=Site"
                assert 88 <= info.remaining_days <= 90
                [chain] = report.chains
                assert [c.subject_cn for c in chain.certificates] == [
                    "site.test", "certwatch Test Intermediate",
                ]  # fmt: skip

                # Probing goes on every 0.3 s: observed each time, recorded once (the verdict
                # and the chain do not change).
                status_stream = sc.stream_id(domain_id)

                async def probed_often() -> bool:
                    async with event_log.pool.connection() as conn:
                        cur = await conn.execute(
                            "SELECT count(*) FROM probe_observations WHERE domain_id = %s",
                            (uuid.UUID(domain_id),),
                        )
                        row = await cur.fetchone()
                    return row is not None and row[0] >= 4

                await wait_for(probed_often, timeout=10)
                assert await _count(event_log, status_stream, sc.CERTIFICATE_CHAIN_OBSERVED) == 1
                assert await _count(event_log, status_stream, sc.DOMAIN_CLASSIFIED) == 1
                assert await event_log.read_stream(f"probe-{domain_id}") == []  # probes are not events

            with tls_server(server_context(*pki.server_files(renewed)), port=port):

                async def updated() -> cpb.MonitoringDetails | None:
                    report = await classifier.GetMonitoringDetails(request, metadata=stack.metadata)
                    return report if report.domain_name_updates else None

                report = await wait_for(updated, timeout=10)
            [update] = report.domain_name_updates
            assert [c.kind for c in update.changes] == ["RENEWAL"]
            assert list(update.changes[0].after) == [renewed.cert.fingerprint(SHA256()).hex()]
            assert report.certificates[0].certificate.sha256 == update.changes[0].after[0]
            assert await _count(event_log, status_stream, sc.CERTIFICATE_CHAIN_OBSERVED) == 2

            _, other_key = await new_account(settings.database_url, "another account")
            with pytest.raises(grpc.aio.AioRpcError) as info_:
                await classifier.GetMonitoringDetails(
                    request, metadata=(("authorization", f"Bearer {other_key}"),)
                )
            assert info_.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await classifier.GetMonitoringDetails(
                    cpb.StatusRequest(domain_id="nope"), metadata=stack.metadata
                )
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
