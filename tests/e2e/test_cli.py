"""The `certwatch` command against a running stack: what a user types, what they read."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import uuid

import pytest

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from certwatch.platform.localstack import Nats
from tests.support.pki import TestPKI
from tests.support.stack import running_stack, wait_for
from tests.support.tls_server import server_context, tls_server


async def test_cli_add_list_details_history_contacts_quota(
    database_url: str, nats_server: Nats, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        TestPKI() as pki,
        # Sent leaf, root, intermediate: SECURE, with a warning in the details.
        tls_server(
            server_context(
                *pki.server_files(pki.leaf("cli.test", org="CLI Org"), (pki.root, pki.intermediate))
            )
        ) as port,
    ):
        settings = Settings(
            database_url=database_url, nats_url=nats_server.url, log_format="text",
            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), ca_file=pki.ca_file,
            resolve_overrides=(f"cli.test:{port}:127.0.0.1",), shutdown_grace_s=2,
        )  # fmt: skip
        async with running_stack(settings) as stack:

            async def cli(*argv: str, service: str = "inventory") -> tuple[int, str, str]:
                server = f"127.0.0.1:{stack.services[service].port}"
                code = await asyncio.to_thread(main, [*argv, "--api-key", stack.api_key, "--server", server])
                captured = capsys.readouterr()
                return code, captured.out, captured.err

            code, out, _ = await cli(
                "contacts", "add", "--name", "Ops", "--email", "ops@example.com", "--json"
            )
            contact_id = json.loads(out)["id"]
            assert code == 0
            code, out, _ = await cli("domains", "add", f"cli.test:{port}", "bad..name", "--enable",
                                     "--contact", contact_id)  # fmt: skip
            assert code == 1  # one entry was rejected
            assert "REJECTED" in out and "ENABLING" in out

            async def secure() -> str | None:
                _, out, _ = await cli("domains", "list", "--json")
                domains = json.loads(out)
                return domains[0]["id"] if domains and domains[0]["status"] == "SECURE" else None

            domain_id = await wait_for(secure, timeout=15)
            _, out, _ = await cli("domains", "list")
            assert "SECURE" in out and "certwatch Test Issuing" in out
            code, out, _ = await cli("domains", "details", domain_id, service="classifier")
            assert code == 0, out
            assert "ATS check: pass" in out and "Certificate chain:" in out and "cli.test" in out
            assert "warning: 127.0.0.1: certificates are sent out of issuance order" in out
            code, out, _ = await cli("domains", "history", domain_id, service="classifier")
            assert code == 0 and out.splitlines()[0].split() == ["FROM", "TO", "DURATION", "STATUS", "CAUSES"]
            assert "now" in out and "so far  SECURE" in out  # one open interval
            code, out, _ = await cli("domains", "history", domain_id, "--checks", service="classifier")
            assert code == 0 and "CHECKED" in out and "SECURE" in out
            code, out, _ = await cli("quota")
            assert code == 0 and "consumed 1" in out
            code, _, err = await cli("domains", "show", "not-a-uuid")
            assert code == 2 and "invalid request: id" in err
            # Several ids in turn: one unknown is said on its own line, the others are done.
            code, out, err = await cli("domains", "add", f"second.cli.test:{port}", "--json")
            second = json.loads(out)["results"][0]["domain"]["id"]
            unknown = str(uuid.uuid4())
            code, out, err = await cli("domains", "disable", domain_id, unknown, second, "--json")
            assert code == 1 and [d["id"] for d in json.loads(out)] == [domain_id, second]
            assert err.strip() == f"certwatch: {unknown}: not found: no domain {unknown} in this account"
            code, out, _ = await cli("domains", "enable", domain_id, "--json")
            assert code == 0 and json.loads(out)["id"] == domain_id and json.loads(out)["monitoring_enabled"]
            code, _, err = await cli("domains", "remove", second, "not-a-uuid")
            assert code == 2 and "'not-a-uuid' is not a domain id" in err  # nothing removed
            code, _, err = await cli("contacts", "remove", contact_id)
            assert code == 2 and "detach" in err
