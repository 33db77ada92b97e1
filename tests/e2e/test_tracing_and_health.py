"""One trace follows a domain from AddDomains to its verdict and its alert; health reflects dependencies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import replace

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from certwatch.platform import telemetry
from certwatch.platform.config import Settings
from certwatch.platform.localstack import Nats
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.robot_servers import RobotState
from tests.support.spans import recorded_spans
from tests.support.stack import running_stack, wait_for
from tests.support.tls_server import server_context, tls_server

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _telemetry() -> Iterator[None]:
    with recorded_spans(EXPORTER):
        yield


async def test_one_trace_from_add_domains_to_verdict_and_alert(
    database_url: str, nats_server: Nats, robots: RobotState, robot_url: str
) -> None:
    robots.webhook_secret = "traced-webhook-secret"
    with TestPKI() as pki:
        files = pki.server_files(pki.leaf("elsewhere.test"))  # a mismatch: the first verdict alerts
        with tls_server(server_context(*files)) as port:
            settings = Settings(
                database_url=database_url, nats_url=nats_server.url, log_format="text",
                allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), ca_file=pki.ca_file,
                resolve_overrides=(f"traced.test:{port}:127.0.0.1",), shutdown_grace_s=2,
                allow_custom_webhooks=True,
            )  # fmt: skip
            async with running_stack(replace(settings)) as stack, stack.channel("inventory") as channel:
                health = health_pb2_grpc.HealthStub(channel)

                async def serving() -> bool:
                    reply = await health.Check(
                        health_pb2.HealthCheckRequest(service="certwatch.v1.Inventory")
                    )
                    return reply.status == health_pb2.HealthCheckResponse.SERVING

                await wait_for(serving, timeout=10)
                inventory = inventory_pb2_grpc.InventoryStub(channel)
                contact = await inventory.CreateContact(pb.ContactInput(
                    name="ops", webhook_url=f"{robot_url}/hook", webhook_secret=robots.webhook_secret,
                ), metadata=stack.metadata)  # fmt: skip
                with telemetry.tracer().start_as_current_span("client AddDomains") as root:
                    carrier = telemetry.inject({})
                    await inventory.AddDomains(
                        pb.AddDomainsRequest(
                            domains=f"traced.test:{port}", enable=True, contact_ids=[contact.id]
                        ),
                        metadata=(*stack.metadata, *carrier.items()),
                    )
                trace_id = root.get_span_context().trace_id

                async def verdict_span() -> list[str]:
                    names = [s.name for s in EXPORTER.get_finished_spans()
                                 if s.context.trace_id == trace_id]  # fmt: skip
                    return names if "notifier send webhook" in names else []

                names = await wait_for(verdict_span, timeout=20)
                assert "/certwatch.v1.Inventory/AddDomains" in names
                assert "probe" in names
                assert "classifier.verdict" in names
                assert any("DomainClassified" in n for n in names)
                assert [r.body["data"]["event"] for r in robots.of("webhook")] == ["mismatch"]

                # NATS gone: health turns NOT_SERVING instead of lying.
                nats_server.kill()

                async def not_serving() -> bool:
                    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
                    return reply.status == health_pb2.HealthCheckResponse.NOT_SERVING

                await wait_for(not_serving, timeout=10)
