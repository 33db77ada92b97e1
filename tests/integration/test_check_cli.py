"""``certwatch check`` end to end against loopback servers, in-process."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from certwatch.cli.check import UsageError, parse_target
from certwatch.cli.main import main
from certwatch.rules.targets import parse_domain_list
from tests.support.pki import TestPKI
from tests.support.tls_server import closed_port, server_context, tls_server

HOST = "www.example.test"


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    with TestPKI(label="CLI Test") as built:
        yield built


def test_target_parsing() -> None:
    assert parse_target("example.com") == (("example.com", 443), None)
    assert parse_target("Example.COM.:8443") == (("example.com", 8443), None)
    assert parse_target("[::1]:8443") == (("::1", 8443), None)
    assert parse_target("[::1]") == (("::1", 443), None)
    assert parse_target("::1") == (("::1", 443), None)
    assert parse_target("bücher.example") == (("xn--bcher-kva.example", 443), None)


@pytest.mark.parametrize(
    ("url", "target"),
    [("https://www.example.com:8443/path?q=1", ("www.example.com", 8443)),
     ("https://www.example.com/", ("www.example.com", 443)),
     ("HTTPS://user@[2001:db8::1]:9443", ("2001:db8::1", 9443))],
)  # fmt: skip
def test_a_url_is_read_as_its_host_and_port_with_a_note(url: str, target: tuple[str, int]) -> None:
    parsed, note = parse_target(url)
    assert parsed == target and note is not None and url in note


@pytest.mark.parametrize(
    "entry",
    ["example.com", "a.example.com:8443", "203.0.113.7", "[2001:db8::1]:443", "*.example.com",
     "example", "bad..name", "host.id", "example.com:0", "example.com:x", "[::1", ":443",
     "user@example.com", "example.com/path", "0.0.0.0", "straße.de", "xn--zz.example", "1.2.3.256"],
)  # fmt: skip
def test_check_accepts_exactly_what_domains_add_accepts(entry: str) -> None:
    """Same function, same answer: a target `check` refuses is one `domains add` rejects."""
    added = parse_domain_list(entry)[0]
    try:
        checked: tuple[str, int] | None = parse_target(entry)[0]
    except UsageError as exc:
        assert added.error is not None and f"[{added.error.rule}]" in str(exc)
        checked = None
    assert checked == (None if added.target is None else (added.target.host, added.target.port))


def test_resolve_accepts_curls_full_form(pki: TestPKI, capsys: pytest.CaptureFixture[str]) -> None:
    """Several addresses for one name, IPv6 in brackets: every one is probed."""
    with tls_server(server_context(*pki.server_files(pki.leaf(HOST)))) as port:
        code = main(
            [
                "check", HOST, f"https://{HOST}:{port}/x", "--json", "--no-ocsp",
                "--resolve", f"{HOST}:443:127.0.0.1,[::1]", "--resolve", f"{HOST}:{port}:127.0.0.1",
                "--cacert", pki.ca_file, "--allow-network", "127.0.0.0/8", "--allow-network", "::1/128",
                "--timeout", "3",
            ]
        )  # fmt: skip
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert code == 1  # nothing listens on 443 here
    assert sorted(e["ip"] for e in rows[0]["probe"]["endpoints"]) == ["127.0.0.1", "::1"]
    assert rows[1]["status"] == "SECURE" and rows[1]["port"] == port
    assert f"as {HOST}:{port}" in captured.err


@pytest.mark.parametrize(
    ("cacert", "message"),
    [("missing.pem", "cannot read it"), ("empty.pem", "no PEM certificate"), (".", "cannot read it")],
)
def test_a_bad_cacert_is_refused_before_anything_connects(
    cacert: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        code = main(["check", f"127.0.0.1:{port}", "--allow-network", "127.0.0.0/8",
                     "--cacert", str(tmp_path / cacert)])  # fmt: skip
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    err = capsys.readouterr().err
    assert code == 2 and message in err and "--cacert" in err and err.count("\n") == 1


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


def test_unset_options_take_the_services_environment(
    pki: TestPKI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run`'s shell (CERTWATCH_CA_FILE, CERTWATCH_ALLOW_NETWORKS, CERTWATCH_RESOLVE) gives
    the check monitoring's view; an option replaces its variable; a bad variable is named."""
    with tls_server(server_context(*pki.server_files(pki.leaf(HOST)))) as port:
        monkeypatch.setenv("CERTWATCH_CA_FILE", pki.ca_file)
        monkeypatch.setenv("CERTWATCH_ALLOW_NETWORKS", "127.0.0.0/8")
        monkeypatch.setenv("CERTWATCH_RESOLVE", f"{HOST}:{port}:127.0.0.1")
        assert main(["check", f"{HOST}:{port}", "--json", "--no-ocsp", "--timeout", "3"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["status"] == "SECURE"
        # --cacert replaces CERTWATCH_CA_FILE: the system's roots do not know the test CA.
        assert (
            main(["check", f"{HOST}:{port}", "--json", "--no-ocsp", "--timeout", "3", "--cacert", "system"])
            == 1
        )
        assert json.loads(capsys.readouterr().out)[0]["primary_cause"] == "CHAIN_VALIDATION_FAILED"
    monkeypatch.setenv("CERTWATCH_CA_FILE", "/nonexistent/ca.pem")
    assert main(["check", f"{HOST}:{port}"]) == 2
    assert "CERTWATCH_CA_FILE '/nonexistent/ca.pem': cannot read it" in capsys.readouterr().err
