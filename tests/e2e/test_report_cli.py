"""`certwatch report` against a running stack: both reports downloaded from a live domain,
streamed through the authenticating interceptor (no key, another account's key: refused)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as ipb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.stack import new_account, running_stack, wait_for
from tests.support.tls_server import free_port_on, server_context, tls_server


async def test_report_downloads(
    settings: Settings, pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port_on(("127.0.0.1",))
    stack_settings = replace(settings, resolve_overrides=(f"report.test:{port}:127.0.0.1",))
    names = ("inventory", "prober", "classifier")
    with tls_server(server_context(*pki.server_files(pki.leaf("report.test", org="Report Org"))), port=port):
        async with running_stack(stack_settings, names) as stack, stack.channel("inventory") as ich:
            added = await inventory_pb2_grpc.InventoryStub(ich).AddDomains(
                ipb.AddDomainsRequest(domains=f"report.test:{port}", enable=True), metadata=stack.metadata
            )
            domain_id = added.results[0].domain.id
            server = f"127.0.0.1:{stack.services['classifier'].port}"

            async def cli(*argv: str, key: str | None = stack.api_key) -> tuple[int, str, str]:
                auth = ["--api-key", key] if key else []
                code = await asyncio.to_thread(main, ["report", *argv, *auth, "--server", server])
                captured = capsys.readouterr()
                return code, captured.out, captured.err

            async def secure() -> bool:
                code, _, _ = await cli(domain_id, "--format", "json", "-o", str(tmp_path / "d.json"))
                report = json.loads((tmp_path / "d.json").read_text()) if code == 0 else {}
                return report.get("monitoring_details", {}).get("details", {}).get("status") == "SECURE"

            await wait_for(secure, timeout=20, every=0.3)
            code, out, _ = await cli(domain_id, "--format", "pdf", "-o", str(tmp_path / "d.pdf"))
            assert code == 0 and "wrote" in out
            text = subprocess.run(["pdftotext", str(tmp_path / "d.pdf"), "-"], capture_output=True, text=True,
                                  check=True).stdout  # fmt: skip
            assert "Monitoring report: report.test" in text and "Certificate Chain Information" in text

            month = datetime.now(UTC).strftime("%Y-%m")
            code, _, _ = await cli("--month", month, "--format", "csv", "-o", str(tmp_path / "m.csv"))
            assert code == 0
            rows = list(csv.DictReader(io.StringIO((tmp_path / "m.csv").read_text())))
            assert [r["host"] for r in rows if r["record"] == "domain"] == ["report.test"]
            code, _, _ = await cli("--month", month, "--format", "pdf", "-o", str(tmp_path / "m.pdf"))
            assert code == 0 and (tmp_path / "m.pdf").read_bytes().startswith(b"%PDF-")

            _, other = await new_account(settings.database_url, "other")
            code, _, err = await cli(domain_id, "--format", "pdf", "-o", str(tmp_path / "x.pdf"), key=other)
            assert code == 2 and "not found" in err and not (tmp_path / "x.pdf").exists()
            assert not (tmp_path / "x.pdf.part").exists()
            code, _, err = await cli(
                domain_id, "--format", "pdf", "-o", str(tmp_path / "x.pdf"), key="cw_x_y"
            )
            assert code == 2 and "not authenticated" in err
            code, _, err = await cli("--month", "2026-13", "--format", "csv", "-o", str(tmp_path / "x.csv"))
            assert code == 2 and "month" in err
            code, _, err = await cli(
                domain_id, "--month", month, "--format", "csv", "-o", str(tmp_path / "x")
            )
            assert code == 2 and "not both" in err
