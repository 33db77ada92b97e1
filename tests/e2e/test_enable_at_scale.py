"""Enabling 1, 100 and 10,000 domains in one call: every one gets its verdict.

The classifier once wedged for good at the 64th waiting probe result (a COPY inside a
pipeline); 1 and 100 sit on either side of that threshold, 10,000 is what a real user's
CSV looks like. A few targets point at a closed port among the healthy ones, so both
verdicts flow through the same pages.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.nginx import nginx
from tests.support.pki import TestPKI
from tests.support.stack import running_stack, wait_for
from tests.support.tls_server import closed_port

BROKEN_EVERY = 50  # one target in 50 points at a closed port


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("count", [1, 100, 10_000])
async def test_every_enabled_domain_gets_a_verdict(settings: Settings, pki: TestPKI, count: int) -> None:
    files = pki.server_files(pki.leaf("*.scale.test", dns=("*.scale.test",), org="Scale Org"))
    hosts = [f"d{i:05d}.scale.test" for i in range(count)]
    broken = {h for i, h in enumerate(hosts) if i % BROKEN_EVERY == BROKEN_EVERY - 1}
    with nginx(*files, workers=2) as server, closed_port() as down:
        resolve = tuple(f"{h}:{down if h in broken else server.port}:127.0.0.1" for h in hosts)
        # Generous timeouts: 10,000 handshakes on a busy 2-core machine are slow, not failed.
        fast = replace(
            settings, resolve_overrides=resolve, probe_connect_timeout_s=5, probe_handshake_timeout_s=15
        )
        async with running_stack(fast, units=count) as stack, stack.channel("inventory") as channel:
            inventory = inventory_pb2_grpc.InventoryStub(channel)
            targets = [f"{h}:{down if h in broken else server.port}" for h in hosts]
            if count <= 500:
                request = pb.AddDomainsRequest(domains=",".join(targets), enable=True)
            else:
                csv = "domain,port,contacts,enable\n" + "".join(
                    t.replace(":", ",") + ",,yes\n" for t in targets
                )
                request = pb.AddDomainsRequest(csv=csv.encode(), enable=True)
            added = await inventory.AddDomains(request, metadata=stack.metadata, timeout=120)
            assert [r.error for r in added.results if not r.added] == []
            assert len(added.results) == count

            async def statuses() -> dict[str, str] | None:
                seen: dict[str, str] = {}
                token = ""
                for _ in range(count // 1000 + 2):
                    page = await inventory.ListDomains(
                        pb.ListDomainsRequest(page_size=1000, page_token=token), metadata=stack.metadata
                    )
                    seen.update((d.host, d.status) for d in page.domains)
                    token = page.next_page_token
                    if not token:
                        break
                return seen if len(seen) == count and "ENABLING" not in seen.values() else None

            seen = await wait_for(statuses, timeout=30 + count / 50, every=0.5)
    assert {h for h, s in seen.items() if s == "ENABLE_FAILED"} == broken
    assert {h for h, s in seen.items() if s == "SECURE"} == set(hosts) - broken
