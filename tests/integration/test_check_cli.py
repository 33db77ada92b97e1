"""``certwatch check`` end to end against loopback servers, in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from certwatch.cli.check import UsageError, parse_resolve, parse_target
from certwatch.cli.main import main
from tests.support.pki import TestPKI
from tests.support.tls_server import closed_port, server_context, tls_server

HOST = "www.example.test"


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    with TestPKI(label="CLI Test") as built:
        yield built


def test_target_and_resolve_parsing() -> None:
    assert parse_target("example.com") == ("example.com", 443)
    assert parse_target("example.com:8443") == ("example.com", 8443)
    assert parse_target("[::1]:8443") == ("::1", 8443)
    assert parse_target("[::1]") == ("::1", 443)
    assert parse_target("::1") == ("::1", 443)
    assert parse_resolve("a.test:443:[::1]") == (("a.test", 443), "::1")
    for bad in ("example.com:0", "example.com:x", "[::1", ":443"):
        with pytest.raises(UsageError):
            parse_target(bad)


def test_json_output_and_exit_status(pki: TestPKI, capsys: pytest.CaptureFixture[str]) -> None:
    good = server_context(*pki.server_files(pki.leaf(HOST)))
    with tls_server(good) as port, closed_port() as dead:
        code = main(
            [
                "check", f"{HOST}:{port}", f"127.0.0.1:{dead}", "--json", "--no-ocsp",
                "--resolve", f"{HOST}:{port}:127.0.0.1", "--cacert", pki.ca_file,
                "--allow-network", "127.0.0.0/8", "--timeout", "3",
            ]
        )  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(r["host"], r["status"]) for r in rows] == [(HOST, "SECURE"), ("127.0.0.1", "ABNORMAL")]
    assert rows[0]["ats"] == {"pass": True, "reasons": []}
    assert rows[0]["certificate"]["subject_cn"] == HOST and rows[0]["primary_cause"] is None
    assert rows[1]["causes"] == ["NETWORK_CONNECTION_FAILURE"]


def test_table_output_all_secure(pki: TestPKI, capsys: pytest.CaptureFixture[str]) -> None:
    with tls_server(server_context(*pki.server_files(pki.leaf(HOST)))) as port:
        code = main(
            [
                "check", f"{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1",
                "--cacert", pki.ca_file, "--allow-network", "127.0.0.0/8",
            ]
        )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "SECURE" in out and "CLI Test Issuing" in out and "pass" in out


def test_table_shows_chain_warnings(pki: TestPKI, capsys: pytest.CaptureFixture[str]) -> None:
    files = pki.server_files(pki.leaf(HOST), (pki.root, pki.intermediate))
    with tls_server(server_context(*files)) as port:
        code = main(
            [
                "check", f"{HOST}:{port}", "--resolve", f"{HOST}:{port}:127.0.0.1", "--no-ocsp",
                "--cacert", pki.ca_file, "--allow-network", "127.0.0.0/8",
            ]
        )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "SECURE" in out
    assert f"{HOST}:{port} warning: 127.0.0.1: certificates are sent out of issuance order" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "host:99999"]) == 2
    assert main(["check", "host", "--resolve", "nonsense"]) == 2
    assert "certwatch check" in capsys.readouterr().err
