"""`certwatch accounts add-user USERNAME`: a web console user for an account (direct
database access, like `certwatch admin`; the other `accounts` commands are in quota.py). The account is `--account`, else the one in the
credentials file that `make run` writes; the password is read from stdin with
`--password-stdin`, else generated and printed once."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from certwatch.cli import admin
from certwatch.cli.client import CliError
from certwatch.console import users
from certwatch.platform.errors import AlreadyExists, InvalidArgument, NotFound


def add_user_parser(sub: Any) -> None:
    """`add-user` under `certwatch accounts`."""
    add = sub.add_parser("add-user", help="create a web console user (argon2id password; database access)")
    add.add_argument("username")
    add.add_argument("--var", type=Path, default=Path("var"),
                     help="data directory of `certwatch stack` whose database to use (default ./var)")  # fmt: skip
    add.add_argument("--account", help="account id (default: the credentials file's account)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=admin.sync(_add_user))


def _account(args: argparse.Namespace) -> uuid.UUID:
    raw = args.account
    if raw is None:
        path = args.var / "credentials.json"
        try:
            raw = json.loads(path.read_text())["account_id"]
        except (OSError, ValueError, KeyError):
            raise CliError(f"--account is required (no account id in {path})") from None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise CliError(f"--account: {raw!r} is not an account id (a UUID)") from None


async def _add_user(args: argparse.Namespace) -> int:
    account_id = _account(args)
    generated = not args.password_stdin
    password = users.new_password() if generated else sys.stdin.readline().rstrip("\n")
    pool = await admin.connect(admin.database_url(args.var))
    try:
        user = await users.add_user(pool, account_id, args.username, password)
    except InvalidArgument as exc:
        raise CliError("; ".join(f"{f}: {d}" for f, d in exc.violations)) from None
    except (AlreadyExists, NotFound) as exc:
        raise CliError(str(exc)) from None
    finally:
        await pool.close()
    print(f"console user {user.username} created in account {account_id}")
    if generated:
        print(f"password: {password}")
    return 0
