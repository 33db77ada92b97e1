"""Every `certwatch` command refuses bad input with exit status 2 and one line, never a traceback.

Commands run in-process against a real stack (`tests.support.stack`); a closed stdout pipe
needs a real process, so those cases run `python -m certwatch.cli.main` as a user would.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import certwatch
from certwatch.cli.main import build_parser, main
from certwatch.platform import auth, db
from certwatch.platform.config import Settings
from certwatch.services import MIGRATIONS
from tests.support.stack import Stack, running_stack
from tests.support.tls_server import closed_port

#: Not every command: these manage a stack or the database directly and are tested beside it.
_NOT_HERE = ("admin", "stack", "serve")
_UNKNOWN = str(uuid.uuid4())
_CLASSIFIER = {("domains", "details"), ("domains", "history")}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf command path of the parser, e.g. ("domains", "list")."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix
    for action in subs:
        for name, child in action.choices.items():
            yield from _commands(child, (*prefix, name))


def _cases(tmp: Path) -> list[list[str]]:
    missing = str(tmp / "missing.csv")
    return [
        ["check", "*.example.com"],
        ["check", "https://[::1/"],
        ["check", "example.com", "--timeout", "-1"],
        ["check", "example.com", "--timeout", "nan"],
        ["check", "example.com", "--cacert", str(tmp / "missing.pem")],
        ["check", "example.com", "--resolve", "example.com:443:nowhere"],
        ["check", "example.com", "--allow-network", "10.0.0.0/33"],
        ["check", "example.com", "--dns-server", "dns.example"],
        ["domains", "add"],
        ["domains", "add", "--csv", missing],
        ["domains", "add", "a.example.com", "--port", "-1"],
        ["domains", "add", "a.example.com", "--port", "99999999999"],
        ["domains", "add", "a.example.com", "--contact", _UNKNOWN],
        ["domains", "list", "--page-size", "-5"],
        ["domains", "list", "--page-size", "5000"],
        ["domains", "list", "--status", "BOGUS"],
        ["domains", "list", "--cause", "BOGUS"],
        ["domains", "list", "--page-token", "garbage"],
        ["domains", "list", "--max-days-left", "99999999999"],
        ["domains", "list", "--credentials", missing],
        ["domains", "list", "--server", "127.0.0.1:1"],
        *[
            ["domains", cmd, ref]
            for cmd in ("show", "enable", "disable", "remove")
            for ref in ("x", _UNKNOWN)
        ],
        ["domains", "edit", "not-a-uuid", "--port", "8443"],
        ["domains", "edit", _UNKNOWN, "--port", "8443"],
        ["domains", "edit", _UNKNOWN, "--port", "-1"],
        ["domains", "details", "not-a-uuid"],
        ["domains", "details", _UNKNOWN],
        ["domains", "history", "not-a-uuid"],
        ["domains", "history", _UNKNOWN],
        ["domains", "template", str(tmp / "no" / "such" / "dir.csv")],
        ["contacts", "add", "--name", "Nobody"],
        ["contacts", "add", "--name", "Ops", "--email", "not an address"],
        ["contacts", "update", "not-a-uuid", "--phone", "+8613800138000"],
        ["contacts", "update", _UNKNOWN, "--phone", "+8613800138000"],
        ["contacts", "update", _UNKNOWN],
        ["contacts", "list", "--api-key", "cw_not_a_key"],
        ["contacts", "remove", "not-a-uuid"],
        ["contacts", "remove", _UNKNOWN],
        ["quota", "--within", "-1"],
        ["accounts", "create", "someone"],  # not an admin key
        ["accounts", "purchase", _UNKNOWN, "--domains", "5", "--admin-key"],
        ["accounts", "purchase", "not-a-uuid", "--domains", "5", "--admin-key"],
        ["accounts", "purchase", _UNKNOWN, "--domains", "-1"],
        ["accounts", "new-key", "--account-id", "not-a-uuid", "--admin-key"],
        ["accounts", "revoke-key", "not-a-uuid"],
        ["accounts", "revoke-key", _UNKNOWN],
        ["domains", "recheck", "not-a-uuid"],
        ["domains", "recheck", _UNKNOWN, "--server", "127.0.0.1:1"],
        ["status", "--credentials", missing],
        ["status", "--api-key", "cw_not_a_key"],
        ["vod", "keys", "create", "--api-key", "cw_not_a_key"],
        ["vod", "keys", "list", "--server", "127.0.0.1:1"],
        ["vod", "keys", "revoke", "CWnosuchkey"],
        ["vod", "domains", "add", "bad..name"],
        ["vod", "domains", "list", "--credentials", missing],
        ["vod", "domains", "set-cert", "nosuch.example.com", "--cert-type", "free"],
        ["vod", "domains", "set-cert", "a.example.com", "--cert-type", "upload"],
        [
            "vod",
            "domains",
            "set-cert",
            "a.example.com",
            "--cert-type",
            "upload",
            "--cert",
            missing,
            "--key",
            missing,
        ],
        ["vod", "domains", "set-cert", "a.example.com", "--cert-type", "cas"],
        ["vod", "domains", "set-cert", "a.example.com", "--cert-type", "bogus"],
        ["vod", "domains", "remove", "nosuch.example.com"],
        ["alerts", "rules", "not-a-uuid"],
        ["alerts", "rules", _UNKNOWN],
        ["alerts", "rules", "--network-failures", "7"],
        ["alerts", "rules", "--quiet", "22:00"],
        ["alerts", "rules", "--time-zone", "Mars/Olympus"],
        ["alerts", "mute", _UNKNOWN, "--until", "tomorrow"],
        ["alerts", "mute", _UNKNOWN, "--until", "2030-01-01T00:00"],
        ["alerts", "ack", "not-a-uuid"],
        ["alerts", "ack", _UNKNOWN],
        ["alerts", "log"],
        ["alerts", "log", _UNKNOWN, "--limit", "5000"],
        ["alerts", "digest"],
        ["alerts", "digest", "--now", "--server", "127.0.0.1:1"],
        ["contacts", "test", "not-a-uuid"],
        ["contacts", "test", _UNKNOWN],
        ["hosting", "subscribe", "--years", "1"],
        ["hosting", "list", "--server", "127.0.0.1:1"],
        ["hosting", "apply", "not-a-uuid", "--domain", "a.example.com"],
        ["hosting", "apply", _UNKNOWN, "--domain", "bad..name"],
        ["hosting", "lifecycle", "not-a-uuid"],
        ["hosting", "renew", _UNKNOWN],
        ["certs", "upload", "--cert", missing, "--key", missing],
        ["certs", "list", "--credentials", missing],
        ["certs", "download", "not-a-uuid", "--format", "pem", "-o", str(tmp / "out.pem")],
        ["certs", "delete", _UNKNOWN],
        ["healthcheck", "nosuch"],
        ["report", "not-a-uuid", "--format", "pdf", "-o", str(tmp / "r.pdf")],
        ["report", _UNKNOWN, "--format", "json", "-o", str(tmp / "r.json")],
        ["report", _UNKNOWN, "--format", "csv", "-o", str(tmp / "r.csv")],
        ["report", "--month", "2026-13", "--format", "csv", "-o", str(tmp / "m.csv")],
        [
            "report",
            "--month",
            "2026-11",
            "--format",
            "pdf",
            "--time-zone",
            "Mars/Olympus",
            "-o",
            str(tmp / "m.pdf"),
        ],
        ["report", "--format", "pdf", "-o", str(tmp / "none.pdf")],
        ["report", _UNKNOWN, "--format", "pdf", "-o", str(tmp / "no" / "such" / "dir.pdf")],
        ["accounts", "add-user", "someone", "--account", "not-a-uuid"],
        ["accounts", "add-user", "someone", "--var", str(tmp / "no-stack")],  # no account to default to
    ]


def _connection(stack: Stack, argv: list[str], admin_key: str) -> list[str]:
    """The stack's address and key, unless the case gives its own."""
    if argv[0] in ("check", "healthcheck") or argv[:2] in (["domains", "template"], ["accounts", "add-user"]):
        return argv
    key = admin_key if "--admin-key" in argv else stack.api_key
    argv = [a for a in argv if a != "--admin-key"]
    service = (
        "classifier" if tuple(argv[:2]) in _CLASSIFIER or argv[0] == "report" else "vod" if argv[0] == "vod"
        else "notifier" if argv[0] == "alerts" or argv[:2] == ["contacts", "test"]
        else "hosting" if argv[0] in ("hosting", "certs") else "inventory"
    )  # fmt: skip
    extra = [] if "--api-key" in argv else ["--api-key", key]
    extra += [] if "--server" in argv else ["--server", f"127.0.0.1:{stack.services[service].port}"]
    return [*argv, *extra]


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's refusals
        return int(exc.code or 0)


async def test_every_command_refuses_bad_input_in_one_line(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _cases(tmp_path)
    covered = {
        tuple(argv[:3]) if argv[0] == "vod" else tuple(argv[:2]) if argv[0] in ("domains", "contacts", "accounts", "alerts", "hosting", "certs")
        else (argv[0],) for argv in cases
    }  # fmt: skip
    commands = {c for c in _commands(build_parser()) if c[0] not in _NOT_HERE}
    assert commands - covered == set(), "give every command a bad-input case here"
    async with running_stack(settings, ("inventory", "classifier", "vod", "notifier", "hosting")) as stack:
        pool = await db.open_pool(settings.database_url, migrate=MIGRATIONS)
        try:
            admin_key = await auth.issue_key(pool, uuid.UUID(stack.account_id), role="admin")
        finally:
            await pool.close()
        failures = []
        for argv in cases:
            full = _connection(stack, argv, admin_key)
            code = await asyncio.to_thread(_run, full)
            captured = capsys.readouterr()
            lines = captured.err.splitlines()
            if code != 2 or len(lines) != 1 or "Traceback" in captured.err:
                failures.append(f"{argv}: exit {code}, stderr {captured.err!r}")
        assert failures == []


def _closed_stdout(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the command as a process whose stdout reader has already gone (`| head -0`)."""
    read, write = os.pipe()
    os.close(read)
    services = str(Path(certwatch.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": services}
    try:
        return subprocess.run([sys.executable, "-m", "certwatch.cli.main", *argv], stdout=write,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=60, check=False)  # fmt: skip
    finally:
        os.close(write)


async def test_a_closed_stdout_is_one_line_not_a_traceback(settings: Settings) -> None:
    async with running_stack(settings, ("inventory",)) as stack:
        server = ["--server", f"127.0.0.1:{stack.services['inventory'].port}", "--api-key", stack.api_key]
        with closed_port() as dead:
            runs = [
                ["domains", "template"],
                ["check", f"127.0.0.1:{dead}", "--allow-network", "127.0.0.0/8", "--no-ocsp"],
                ["domains", "list", *server],
                ["quota", *server],
            ]
            results = await asyncio.gather(*(asyncio.to_thread(_closed_stdout, argv) for argv in runs))
    for argv, result in zip(runs, results, strict=True):
        assert (result.returncode, result.stderr.count("\n")) == (2, 1), (argv, result.stderr)
        assert "output closed" in result.stderr and "Traceback" not in result.stderr
