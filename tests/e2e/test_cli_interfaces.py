"""The CLI does what its help says: partial contact updates, paging, filters, Unicode names,
and the findings behind a verdict, against a running stack."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace

import pytest

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from tests.support.pki import TestPKI
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tls_server import closed_port, server_context, tls_server


def _cli(stack: Stack, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    async def run(*argv: str, service: str = "inventory") -> tuple[int, str, str]:
        server = f"127.0.0.1:{stack.services[service].port}"
        code = await asyncio.to_thread(main, [*argv, "--api-key", stack.api_key, "--server", server])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


async def test_contacts_update_changes_only_the_fields_given(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_stack(settings, ("inventory",)) as stack:
        cli = _cli(stack, capsys)
        _, out, _ = await cli("contacts", "add", "--name", "Ops", "--email", "ops@example.com", "--json")
        contact_id = json.loads(out)["id"]
        code, out, err = await cli("contacts", "update", contact_id, "--name", "Ops 2",
                                   "--phone", "+8613800138000", "--json")  # fmt: skip
        assert code == 0, err
        assert {k: v for k, v in json.loads(out).items() if k in ("name", "phone", "email")} == {
            "name": "Ops 2", "phone": "+8613800138000", "email": "ops@example.com",
        }  # fmt: skip
        code, out, err = await cli("contacts", "update", contact_id, "--email", "", "--json")  # clears one
        assert code == 0, err
        assert (json.loads(out)["name"], json.loads(out)["phone"], json.loads(out)["email"]) == (
            "Ops 2", "+8613800138000", "",
        )  # fmt: skip
        code, _, err = await cli("contacts", "update", contact_id, "--phone", "")  # no channel left
        assert code == 2 and "at least one way to reach" in err


async def test_list_pages_filters_unicode_names_and_details_findings(
    settings: Settings, pki: TestPKI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with tls_server(server_context(*pki.server_files(pki.leaf("cli.test")))) as port:
        # The older comma-separated form of CERTWATCH_RESOLVE, with a Unicode host name.
        resolve = (f"cli.test:{port}:127.0.0.1,bücher.test:{port}:127.0.0.1",)
        async with running_stack(replace(settings, resolve_overrides=resolve)) as stack:
            cli = _cli(stack, capsys)
            code, _, err = await cli("domains", "add", f"cli.test:{port}", f"bücher.test:{port}", "--enable")
            assert code == 0, err
            code, _, _ = await cli("domains", "add", "a.example.com", "b.example.com", "c.example.com")
            assert code == 0

            # Paging: the token the output names continues the list, without repeats.
            code, first, err = await cli("domains", "list", "--page-size", "2", "--json")
            token = re.search(r"--page-token (\S+)", err)
            assert code == 0 and token, err
            code, second, err = await cli(
                "domains", "list", "--page-size", "10", "--page-token", token[1], "--json"
            )
            assert code == 0, err
            hosts = [d["host"] for d in json.loads(first) + json.loads(second)]
            assert sorted(hosts) == sorted(set(hosts)) and len(hosts) == 5

            # Filters are checked and the refusal lists what is valid.
            code, _, err = await cli("domains", "list", "--status", "broken")
            assert code == 2 and "status" in err and "SECURE" in err and "SERVICE_ENDED" in err
            assert err.count("\n") == 1
            code, _, err = await cli("domains", "list", "--cause", "EXPIRING")
            assert code == 2 and "EXPIRED" in err and "CHAIN_VALIDATION_FAILED" in err

            async def mismatched() -> str | None:
                _, out, _ = await cli("domains", "list", "--status", "abnormal", "--json")
                found = json.loads(out)
                return found[0]["id"] if found else None

            domain_id = await wait_for(mismatched, timeout=15)

            # Unicode beside punycode, and --search finds either form (a part of it, too).
            _, out, _ = await cli("domains", "list")
            assert f"xn--bcher-kva.test:{port} (bücher.test)" in out
            for search in ("bücher", "ücher.te", "xn--bcher", "BÜCHER"):
                _, out, _ = await cli("domains", "list", "--search", search, "--json")
                assert [d["id"] for d in json.loads(out)] == [domain_id], search
            _, out, _ = await cli("domains", "show", domain_id, "--json")
            assert json.loads(out)["host_unicode"] == "bücher.test"
            _, out, _ = await cli("domains", "show", domain_id)
            assert f"TARGET         xn--bcher-kva.test:{port} (bücher.test)" in out and "{" not in out

            # details names the finding: which address, which certificate, the validator's words.
            code, out, err = await cli("domains", "details", domain_id, service="classifier")
            assert code == 0, err
            assert f"xn--bcher-kva.test:{port} (bücher.test)" in out
            finding = next(line for line in out.splitlines() if "CERTIFICATE_MISMATCH:" in line)
            assert "127.0.0.1" in finding and "cli.test" in finding, out
            code, out, _ = await cli("domains", "details", domain_id, "--json", service="classifier")
            (found,) = json.loads(out)["findings"]
            assert found["cause"] == "CERTIFICATE_MISMATCH" and found["ip"] == "127.0.0.1"
            assert found["cert_sha256"] and "cli.test" in found["cert_subject"]

            # Contact information: name, phone and email, read from inventory (the seed's details).
            _, out, _ = await cli("contacts", "add", "--name", "Ops", "--phone", "+8613800138000",
                                  "--email", "ops@example.com", "--json")  # fmt: skip
            contact_id = json.loads(out)["id"]
            code, _, err = await cli("domains", "edit", domain_id, "--contact", contact_id)
            assert code == 0, err
            monkeypatch.setenv("CERTWATCH_INVENTORY_ADDR", f"127.0.0.1:{stack.services['inventory'].port}")
            async with asyncio.timeout(20):
                while "Ops (+8613800138000, ops@example.com)" not in out:  # the edit reaches the report
                    await asyncio.sleep(0.2)
                    code, out, err = await cli("domains", "details", domain_id, service="classifier")
                    assert code == 0, err
            with closed_port() as dead:  # inventory not answering: the ids, said so
                monkeypatch.setenv("CERTWATCH_INVENTORY_ADDR", f"127.0.0.1:{dead}")
                code, out, _ = await cli("domains", "details", domain_id, service="classifier")
            assert f"{contact_id} (contact details unavailable: inventory did not answer)" in out
