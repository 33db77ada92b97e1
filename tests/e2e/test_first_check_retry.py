"""An enable check that meets only silence tries once more before deciding ENABLE_FAILED:
the verdict stays until the user acts, so a lost packet must not decide it."""

from __future__ import annotations

from dataclasses import replace

from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.dns_server import dns_server
from tests.support.pki import TestPKI
from tests.support.stack import running_stack, wait_for
from tests.support.tls_server import server_context, tls_server


async def test_an_enable_check_that_timed_out_is_tried_again(settings: Settings, pki: TestPKI) -> None:
    files = pki.server_files(pki.leaf("flaky.test"))
    # Every DNS query of the first probe is lost (three sends of A and of AAAA each).
    zone = {"flaky.test": {"A": ["127.0.0.1"], "drop_first": 3}, "lost.test": {"silent": True}}
    with tls_server(server_context(*files)) as port, dns_server(zone) as nameserver:
        fast = replace(settings, dns_servers=(f"{nameserver[0]}:{nameserver[1]}",), probe_connect_timeout_s=1,
                       probe_handshake_timeout_s=1)  # fmt: skip
        async with running_stack(fast) as stack, stack.channel("inventory") as channel:
            inventory = inventory_pb2_grpc.InventoryStub(channel)
            added = await inventory.AddDomains(
                pb.AddDomainsRequest(domains=f"flaky.test:{port},lost.test:{port}", enable=True),
                metadata=stack.metadata,
            )
            ids = {r.entry.split(":")[0]: r.domain.id for r in added.results}

            async def settled() -> dict[str, str] | None:
                got = {h: (await inventory.GetDomain(pb.GetDomainRequest(id=i), metadata=stack.metadata))
                       for h, i in ids.items()}  # fmt: skip
                statuses = {h: d.status + "/" + d.primary_cause for h, d in got.items()}
                return None if any(s.startswith("ENABLING") for s in statuses.values()) else statuses

            statuses = await wait_for(settled, timeout=45, every=0.2)
    assert statuses["flaky.test"] == "SECURE/"
    assert statuses["lost.test"] == "ENABLE_FAILED/INVALID_IP"  # silence twice is a verdict
