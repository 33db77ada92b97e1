"""`certwatch admin ...`: operator commands that talk to PostgreSQL directly.

They need `CERTWATCH_DATABASE_URL`; they are how the first account and its key come to exist.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

from certwatch.inventory import domain as d
from certwatch.inventory import quota
from certwatch.platform import auth, config, db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import rebuild
from certwatch.platform.registry import projections


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("admin", help="operator commands (direct database access)")
    sub = parser.add_subparsers(dest="admin_command", required=True)
    create = sub.add_parser("create-account", help="create an account and print its first API key")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="the key gets the admin role")
    create.set_defaults(handler=_sync(_create_account))
    purchase = sub.add_parser("purchase", help="record a quota purchase for an account")
    purchase.add_argument("account_id")
    purchase.add_argument("--domains", type=int, default=1, help="domains per package")
    purchase.add_argument("--quantity", type=int, default=1)
    purchase.add_argument("--years", type=int, default=1)
    purchase.set_defaults(handler=_sync(_purchase))
    rb = sub.add_parser("rebuild", help="empty a projection and replay the event log into it")
    rb.add_argument("projection", help="projection name, or 'list' to list them")
    rb.set_defaults(handler=_sync(_rebuild))


def _sync(fn: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        return int(asyncio.run(fn(args, config.load())))

    return run


async def _create_account(args: argparse.Namespace, settings: config.Settings) -> int:
    pool = await db.open_pool(settings.database_url)
    try:
        account_id, key = await auth.create_account(pool, args.name, role="admin" if args.admin else "user")
    finally:
        await pool.close()
    print(json.dumps({"account_id": str(account_id), "api_key": key}))
    return 0


async def _purchase(args: argparse.Namespace, settings: config.Settings) -> int:
    units = quota.purchase_units(args.domains, args.quantity, args.years)
    account_id = uuid.UUID(args.account_id)
    pool = await db.open_pool(settings.database_url)
    try:
        await EventLog(pool).append(
            d.quota_stream_id(account_id),
            [
                NewEvent(
                    d.QUOTA_PURCHASED,
                    {
                        "account_id": str(account_id),
                        "units": units,
                        "domain_count": args.domains,
                        "quantity": args.quantity,
                        "years": args.years,
                    },
                )
            ],
            expected_version=None,
        )
    finally:
        await pool.close()
    print(f"recorded {units} monitoring units (365 days each) for {account_id}")
    return 0


async def _rebuild(args: argparse.Namespace, settings: config.Settings) -> int:
    pool = await db.open_pool(settings.database_url)
    try:
        event_log = EventLog(pool)
        known = projections(event_log)
        if args.projection == "list" or args.projection not in known:
            print("\n".join(sorted(known)))
            return 0 if args.projection == "list" else 2
        applied = await rebuild(event_log, known[args.projection])
    finally:
        await pool.close()
    print(f"rebuilt {args.projection}: {applied} events replayed")
    return 0
