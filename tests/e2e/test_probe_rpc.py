"""The prober's ad hoc Probe RPC: a real probe and verdict, recorded nowhere."""

from __future__ import annotations

import uuid
from dataclasses import replace

import grpc
import pytest

from certwatch.platform import observations
from certwatch.platform.config import Settings
from certwatch.v1 import prober_pb2 as pb
from certwatch.v1 import prober_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.stack import running_stack
from tests.support.tls_server import server_context, tls_server


async def test_probe_rpc_returns_verdict_and_facts(settings: Settings, pki: TestPKI) -> None:
    files = pki.server_files(pki.leaf("adhoc.test", org="Adhoc"))
    with tls_server(server_context(*files)) as port:
        settings = replace(settings, resolve_overrides=(f"adhoc.test:{port}:127.0.0.1",))
        async with running_stack(settings, names=("prober",)) as stack, stack.channel("prober") as channel:
            prober = prober_pb2_grpc.ProberStub(channel)
            reply = await prober.Probe(pb.ProbeRequest(host="AdHoc.test", port=port), metadata=stack.metadata)
            assert (reply.status, reply.primary_cause, list(reply.causes)) == ("SECURE", "", [])
            endpoint = reply.facts["endpoints"][0]
            assert endpoint["ip"] == "127.0.0.1" and len(endpoint["chain"]) == 2
            assert reply.verdict["brand"] == "certwatch Test Issuing"

            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await prober.Probe(pb.ProbeRequest(host="*.adhoc.test", port=port), metadata=stack.metadata)
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await prober.Probe(pb.ProbeRequest(host="adhoc.test", port=port))
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
            runtime = stack.services["prober"].runtime
            assert runtime is not None
            recorded = await runtime.event_log.read_all(limit=10_000)
            assert [
                e for e in recorded if e.stream_id.startswith(("probe-", "status-"))
            ] == []  # nothing recorded
            async with runtime.pool.connection() as conn:
                assert await observations.last_observed(conn, [str(uuid.uuid4())]) == {}
                cur = await conn.execute("SELECT count(*) FROM probe_observations")
                assert (await cur.fetchone()) == (0,)
