"""The command line's start: a command imports only its own module."""

from __future__ import annotations

import os
import subprocess
import sys

from certwatch.cli.main import COMMANDS, build_parser


def test_every_command_is_found_by_its_name() -> None:
    """`main` imports the module COMMANDS names for the command given: a command missing
    there would only work through `--help`'s full parser."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)  # type: ignore[arg-type]
    for command in COMMANDS:
        one = next(a for a in build_parser(command)._actions if a.dest == "command")
        assert command in one.choices  # type: ignore[operator]


def test_client_commands_start_without_the_database_and_nats_clients() -> None:
    """Every command imported every module: about 1 s of CPU (psycopg, NATS, the prober)
    before `certwatch domains list` sent its one RPC (trial)."""
    code = (
        "import sys\n"
        "from certwatch.cli.main import build_parser\n"
        "for command in ('domains', 'contacts', 'status', 'vod', 'report', 'alerts'):\n"
        "    build_parser(command)\n"
        "print(sorted(m for m in ('psycopg', 'nats', 'certwatch.platform.projection') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
