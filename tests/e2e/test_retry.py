"""The seed's "edit it and retry", as a user types it: an enable check that fails gives its
quota unit back; fixing the server and editing (same port) checks again as an enable, and
the 365 days start with the first check that passes. `recheck`, `edit` and `enable` of a
monitored domain probe it now."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pytest

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from certwatch.rules.quota import service_end
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.stack import new_account, running_stack, wait_for
from tests.support.tls_server import closed_port, server_context, tls_server


async def test_a_failed_enable_releases_its_unit_and_edit_retries_until_monitoring_starts(
    settings: Settings, pki: TestPKI, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = contextlib.ExitStack()  # the port is held but nothing listens: connections are refused
    port = blocked.enter_context(closed_port())
    resolve = (f"retry.test:{port}:127.0.0.1", f"other.test:{port}:127.0.0.1")
    async with running_stack(replace(settings, resolve_overrides=resolve)) as stack:
        _, key = await new_account(stack.settings.database_url, "retry", units=1)

        async def run(*argv: str, api_key: str = key) -> tuple[int, str, str]:
            server = f"127.0.0.1:{stack.services['inventory'].port}"
            code = await asyncio.to_thread(main, [*argv, "--api-key", api_key, "--server", server])
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        async def cli(*argv: str, api_key: str = key) -> tuple[int, str]:
            code, out, _ = await run(*argv, api_key=api_key)
            return code, out

        async def show(domain_id: str) -> dict[str, Any]:
            code, out = await cli("domains", "show", domain_id, "--json")
            assert code == 0, out
            shown: dict[str, Any] = json.loads(out)
            return shown

        async def units() -> tuple[int, int, int]:
            _, out = await cli("quota", "--json")
            q = json.loads(out)
            return q.get("consumed_units", 0), q.get("reserved_units", 0), q.get("remaining_units", 0)

        async def settled(domain_id: str, status: str, quota: tuple[int, int, int]) -> dict[str, Any] | None:
            shown = await show(domain_id)
            return shown if shown["status"] == status and await units() == quota else None

        code, out = await cli("domains", "add", f"retry.test:{port}", "--enable", "--json")
        assert code == 0, out
        domain_id = json.loads(out)["results"][0]["domain"]["id"]
        assert await units() in ((0, 1, 0), (0, 0, 1))  # reserved, unless already released
        failed = await wait_for(lambda: settled(domain_id, "ENABLE_FAILED", (0, 0, 1)), timeout=20)
        assert failed["primary_cause"] == "CONNECTION_FAILURE" and "service_ends_at" not in failed
        code, out = await cli("quota")
        assert "consumed 0, reserved 0, available 1" in out, out

        good = pki.server_files(pki.leaf("retry.test", org="Retry Org"))
        blocked.close()  # the server comes up on that port
        with tls_server(server_context(*good), port=port):
            code, out = await cli("domains", "edit", domain_id, "--port", str(port))  # the same port
            assert code == 0 and "ENABLING" in out, out
            secure = await wait_for(lambda: settled(domain_id, "SECURE", (1, 0, 0)), timeout=20)
            checked = datetime.fromisoformat(secure["last_checked_at"].replace("Z", "+00:00"))

            # shown with the verdict itself: never checked but not yet counting its days
            assert date.fromisoformat(secure["service_ends_at"][:10]) == service_end(checked.date())
            code, out = await cli("quota")
            assert "consumed 1, reserved 0, available 0" in out, out

            # A monitored domain: recheck, edit with no change and enable all probe now (the
            # interval is an hour), and none of them needs quota (none is left).
            for argv in (("domains", "recheck", domain_id), ("domains", "edit", domain_id),
                         ("domains", "enable", domain_id)):  # fmt: skip
                before = (await show(domain_id))["last_checked_at"]
                code, out = await cli(*argv)
                assert code == 0, (argv, out)

                async def probed_again(before: str = before) -> bool:
                    shown = await show(domain_id)
                    return bool(shown["last_checked_at"] != before and shown["status"] == "SECURE")

                assert await wait_for(probed_again, timeout=20), argv
            assert await units() == (1, 0, 0)

        # Per-id outcomes: unknown, malformed, another account's and a disabled domain's ids
        # are each reported; the call itself works.
        code, out = await cli("domains", "add", f"other.test:{port}", "--json", api_key=stack.api_key)
        foreign = json.loads(out)["results"][0]["domain"]["id"]
        code, out = await cli("domains", "add", f"retry.test:{port + 1 if port < 65535 else 1}", "--json")
        disabled = json.loads(out)["results"][0]["domain"]["id"]
        unknown = str(uuid.uuid4())
        code, out = await cli("domains", "recheck", domain_id, unknown, foreign, disabled)
        assert code == 1
        lines = {line.split()[0]: line for line in out.splitlines()[1:]}
        assert any(s in lines[domain_id] for s in ("SECURE", "ABNORMAL"))
        assert "NOT_FOUND" in lines[unknown] and "NOT_FOUND" in lines[foreign]
        assert "FAILED_PRECONDITION" in lines[disabled] and "not enabled" in lines[disabled]
        # A malformed id: one line before anything is sent from the CLI, one result from the RPC.
        code, out, err = await run("domains", "recheck", domain_id, "nope")
        assert (code, out, err) == (2, "", "certwatch: recheck: 'nope' is not a domain id (a UUID)\n")
        async with stack.channel("inventory") as channel:
            response = await inventory_pb2_grpc.InventoryStub(channel).RecheckDomains(
                pb.RecheckDomainsRequest(ids=["nope", domain_id, "nope"]),
                metadata=(("authorization", f"Bearer {key}"),),
            )
        # (the server is gone by now: the rechecks may already have found it down)
        assert [(r.id, r.code, r.domain.status in ("SECURE", "ABNORMAL")) for r in response.results] == [
            ("nope", "INVALID_ARGUMENT", False), (domain_id, "", True)]  # fmt: skip
