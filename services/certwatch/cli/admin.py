"""`certwatch admin ...`: operator commands that talk to PostgreSQL directly.

The database is `CERTWATCH_DATABASE_URL`, else the one `certwatch stack` (`make run`) runs
for `--var` (its port is in `var/stack.json`), else the default in `platform/config.py`.
They are how the first account and its key come to exist; bad input is one line, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from certwatch.cli.client import CliError, fail
from certwatch.console import users
from certwatch.contracts import quota as qc
from certwatch.platform import auth, config, db, localstack
from certwatch.platform.errors import AlreadyExists, InvalidArgument
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import rebuild
from certwatch.rules import quota
from certwatch.rules.targets import ValidationError
from certwatch.services import MIGRATIONS, projections

CONNECT_TIMEOUT_S = 2
BOOTSTRAP_KEY_ENV = "CERTWATCH_BOOTSTRAP_API_KEY"
# The first web console user of the admin account (the chart's bootstrap Secret gives both).
CONSOLE_USER_ENV = "CERTWATCH_BOOTSTRAP_CONSOLE_USER"
CONSOLE_PASSWORD_ENV = "CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("admin", help="operator commands (direct database access)")
    parser.add_argument("--var", type=Path, default=Path("var"),
                        help="data directory of `certwatch stack` whose database to use (default ./var)")  # fmt: skip
    sub = parser.add_subparsers(dest="admin_command", required=True)
    create = sub.add_parser("create-account", help="create an account and print its first API key")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="the key gets the admin role")
    create.set_defaults(handler=sync(_create_account))
    purchase = sub.add_parser("purchase", help="record a quota purchase for an account")
    purchase.add_argument("account_id")
    purchase.add_argument("--domains", default="1", help="domains per package")
    purchase.add_argument("--quantity", default="1")
    purchase.add_argument("--years", default="1")
    purchase.set_defaults(handler=sync(_purchase))
    migrate = sub.add_parser(
        "migrate", help="apply pending database migrations (a deployment's migrations Job)"
    )
    migrate.set_defaults(handler=sync(_migrate))
    boot = sub.add_parser(
        "bootstrap",
        help=f"create the admin account NAME, if missing, with the API key in ${BOOTSTRAP_KEY_ENV}",
    )
    boot.add_argument("name")
    boot.set_defaults(handler=sync(_bootstrap))
    rb = sub.add_parser("rebuild", help="empty a projection and replay the event log into it")
    rb.add_argument("projection", help="projection name, or 'list' to list them")
    rb.set_defaults(handler=sync(_rebuild))


def sync(
    fn: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(fn(args))
        except (CliError, config.ConfigError) as exc:
            return fail(str(exc))

    return run


@contextlib.asynccontextmanager
async def _database(var: Path) -> AsyncIterator[AsyncConnectionPool[Any]]:
    pool = await connect(database_url(var))
    try:
        yield pool
    finally:
        await pool.close()


def database_url(var: Path, env: dict[str, str] | None = None) -> str:
    """`CERTWATCH_DATABASE_URL`, else the local stack's database for `var`, else the default."""
    env = dict(os.environ) if env is None else env
    if env.get("CERTWATCH_DATABASE_URL"):
        return env["CERTWATCH_DATABASE_URL"]
    port = localstack.saved_ports(var).get("postgres")
    if port is not None:
        return localstack.Postgres(var / "postgres", port).url
    return config.Settings().database_url


async def connect(url: str) -> AsyncConnectionPool[Any]:
    """A pool on `url`, or a one-line `CliError` within a couple of seconds when the database
    does not answer (the pool alone would wait 30 s and raise `PoolTimeout`)."""
    try:
        probe = await psycopg.AsyncConnection.connect(url, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(
            f"cannot reach PostgreSQL at {_where(url)} ({reason}); is `make run` running? The database"
            " comes from CERTWATCH_DATABASE_URL, else --var's stack.json"
        ) from None
    await probe.close()
    return await db.open_pool(url, migrate=MIGRATIONS)


def _where(url: str) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "CERTWATCH_DATABASE_URL (not a valid connection string)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


async def create_account(pool: AsyncConnectionPool[Any], name: str, *, admin: bool) -> tuple[uuid.UUID, str]:
    if not name.strip():
        raise CliError("name: must not be empty")
    try:
        return await auth.create_account(pool, name, role="admin" if admin else "user")
    except psycopg.errors.UniqueViolation:
        raise CliError(f"name: an account named {name!r} already exists") from None


async def account_named(pool: AsyncConnectionPool[Any], name: str) -> uuid.UUID | None:
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT account_id FROM accounts WHERE name = %s", (name,))
        ).fetchone()
    return None if row is None else uuid.UUID(str(row[0]))


async def record_purchase(
    pool: AsyncConnectionPool[Any], account_id: uuid.UUID, domains: int, quantity: int = 1, years: int = 1,
    *, event_id: uuid.UUID | None = None,
) -> int:  # fmt: skip
    """Append `QuotaPurchased` for an existing account; a given `event_id` makes a repeat a no-op."""
    units = purchase_units(domains, quantity, years)
    async with pool.connection() as conn:
        found = await (
            await conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,))
        ).fetchone()
    if found is None:
        raise CliError(f"account_id: no account {account_id}")
    data = {"account_id": str(account_id), "units": units, "domain_count": domains, "quantity": quantity,
            "years": years}  # fmt: skip
    event = NewEvent(qc.QUOTA_PURCHASED, data, event_id=event_id)
    await EventLog(pool).append(qc.stream_id(account_id), [event], expected_version=None)
    return units


def purchase_units(domains: int, quantity: int, years: int) -> int:
    try:
        return quota.purchase_units(domains, quantity, years)
    except ValidationError as exc:
        flags = {"domain_count": "--domains", "quantity": "--quantity", "years": "--years"}
        v = exc.violations[0]
        raise CliError(
            f"{flags.get(v.field, v.field)}: {v.description.removeprefix(v.field + ' ')}"
        ) from None


def _whole(raw: str, flag: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise CliError(f"{flag}: must be a whole number, got {raw!r}") from None


def _uuid(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise CliError(f"{field}: {raw!r} is not a UUID") from None


async def _create_account(args: argparse.Namespace) -> int:
    async with _database(args.var) as pool:
        account_id, key = await create_account(pool, args.name, admin=args.admin)
    print(json.dumps({"account_id": str(account_id), "api_key": key}))
    return 0


async def _migrate(args: argparse.Namespace) -> int:
    async with _database(args.var):  # opening the pool applies what is pending, advisory-locked
        pass
    print("database schema is current")
    return 0


async def bootstrap(pool: AsyncConnectionPool[Any], name: str, key: str) -> tuple[uuid.UUID, bool]:
    """The admin account `name` with `key` (generated by the deployment, e.g. the chart's
    bootstrap Secret): created if missing, the key registered if new. Idempotent, so the
    Job may run on every install and upgrade. Returns (account id, whether the key was new)."""
    if not name.strip():
        raise CliError("name: must not be empty")
    try:
        auth.parse(key)
    except auth.Unauthenticated:
        raise CliError(
            f"{BOOTSTRAP_KEY_ENV}: expected an API key cw_<id>_<secret of 32+ characters>"
        ) from None
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO accounts (account_id, name) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (uuid.uuid4(), name),
        )
    account_id = await account_named(pool, name)
    assert account_id is not None
    return account_id, await auth.register_key(pool, account_id, key, role="admin")


async def _bootstrap(args: argparse.Namespace) -> int:
    key = os.environ.get(BOOTSTRAP_KEY_ENV, "")
    if not key:
        raise CliError(f"{BOOTSTRAP_KEY_ENV}: required (the API key to register; it is never printed)")
    username = os.environ.get(CONSOLE_USER_ENV, "")
    password = os.environ.get(CONSOLE_PASSWORD_ENV, "")
    if username and not password:
        raise CliError(f"{CONSOLE_PASSWORD_ENV}: required with {CONSOLE_USER_ENV} (it is never printed)")
    async with _database(args.var) as pool:
        account_id, new = await bootstrap(pool, args.name, key)
        answer: dict[str, Any] = {"account_id": str(account_id), "key_registered": new}
        if username:
            answer["console_user_created"] = await bootstrap_console_user(
                pool, account_id, username, password
            )
    print(json.dumps(answer))
    return 0


async def bootstrap_console_user(
    pool: AsyncConnectionPool[Any], account_id: uuid.UUID, username: str, password: str
) -> bool:
    """The console user `username` of the admin account, created if missing; an existing one is
    left as it is (its password may have been changed since), so the Job stays idempotent."""
    try:
        await users.add_user(pool, account_id, username, password)
    except AlreadyExists:
        return False
    except InvalidArgument as exc:
        names = {"username": CONSOLE_USER_ENV, "password": CONSOLE_PASSWORD_ENV}
        raise CliError("; ".join(f"{names.get(f, f)}: {d}" for f, d in exc.violations)) from None
    return True


async def _purchase(args: argparse.Namespace) -> int:
    account_id = _uuid(args.account_id, "account_id")
    counts = [_whole(getattr(args, n), f"--{n}") for n in ("domains", "quantity", "years")]
    purchase_units(*counts)  # refused before connecting
    async with _database(args.var) as pool:
        units = await record_purchase(pool, account_id, *counts)
    print(f"recorded {units} monitoring units (365 days each) for {account_id}")
    return 0


async def _rebuild(args: argparse.Namespace) -> int:
    async with _database(args.var) as pool:
        event_log = EventLog(pool)
        known = projections(event_log)
        if args.projection == "list":
            print("\n".join(sorted(known)))
            return 0
        if args.projection not in known:
            raise CliError(f"projection: unknown {args.projection!r}; one of {', '.join(sorted(known))}")
        applied = await rebuild(event_log, known[args.projection])
    print(f"rebuilt {args.projection}: {applied} events replayed")
    return 0
