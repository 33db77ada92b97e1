"""`certwatch quota` and `certwatch accounts ...`: quota left, purchases, accounts and keys."""

from __future__ import annotations

import argparse
import json
from typing import Any

from certwatch.cli import accounts
from certwatch.cli.client import (
    CliError,
    add_connection_options,
    as_json,
    call,
    connect,
    fail,
    positive_int,
    table,
)
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc


def add_parser(subparsers: Any) -> None:
    q = subparsers.add_parser("quota", help="monitoring quota: units left and domains ending soon")
    q.add_argument(
        "--within", type=positive_int, default=30, help="list domains whose service ends within N days"
    )
    add_connection_options(q)
    q.set_defaults(handler=_quota)

    acc = subparsers.add_parser("accounts", help="accounts, API keys and purchases (admin)")
    sub = acc.add_subparsers(dest="accounts_command", required=True)
    create = sub.add_parser("create", help="create an account (admin); prints its first API key")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true")
    add_connection_options(create)
    create.set_defaults(handler=_create)
    buy = sub.add_parser("purchase", help="record a package purchase for an account (admin)")
    buy.add_argument("account_id")
    buy.add_argument("--domains", type=positive_int, required=True, help="domains per package")
    buy.add_argument("--quantity", type=positive_int, default=1)
    buy.add_argument("--years", type=positive_int, default=1)
    add_connection_options(buy)
    buy.set_defaults(handler=_purchase)
    key = sub.add_parser("new-key", help="create another API key (admins may name an account)")
    key.add_argument("--account-id", default="")
    add_connection_options(key)
    key.set_defaults(handler=_new_key)
    revoke = sub.add_parser("revoke-key", help="revoke an API key by its id")
    revoke.add_argument("key_id")
    add_connection_options(revoke)
    revoke.set_defaults(handler=_revoke)
    accounts.add_user_parser(sub)


def _stub(args: argparse.Namespace) -> tuple[inventory_pb2_grpc.InventoryStub, Any]:
    channel, metadata = connect(args, "inventory")
    return inventory_pb2_grpc.InventoryStub(channel), metadata


def _print_quota(args: argparse.Namespace, q: pb.Quota) -> None:
    if args.json:
        print(json.dumps(as_json(q), indent=2))
        return
    print(f"units purchased {q.purchased_units}: consumed {q.consumed_units}, reserved {q.reserved_units},"
          f" available {q.remaining_units} (a unit is 365 monitoring days for one domain; an enable"
          " check reserves one, consumed when monitoring starts, returned if the check fails)")  # fmt: skip
    if q.ending_soon:
        print(table([[e.domain_id, f"{e.host}:{e.port}", e.service_ends_at.ToDatetime().date().isoformat(),
                      str(e.remaining_days)] for e in q.ending_soon],
                    ["ID", "TARGET", "SERVICE ENDS", "DAYS LEFT"]))  # fmt: skip


def _quota(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        _print_quota(args, call(stub.GetQuota, pb.GetQuotaRequest(ending_within_days=args.within), metadata))
    except CliError as exc:
        return fail(str(exc))
    return 0


def _create(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        created = call(
            stub.CreateAccount, pb.CreateAccountRequest(name=args.name, admin=args.admin), metadata
        )
    except CliError as exc:
        return fail(str(exc))
    print(json.dumps({"account_id": created.account_id, "api_key": created.api_key}))
    return 0


def _purchase(args: argparse.Namespace) -> int:
    request = pb.PurchasePackageRequest(account_id=args.account_id, domain_count=args.domains,
                                        quantity=args.quantity, years=args.years)  # fmt: skip
    try:
        stub, metadata = _stub(args)
        _print_quota(args, call(stub.PurchasePackage, request, metadata))
    except CliError as exc:
        return fail(str(exc))
    return 0


def _new_key(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        key = call(stub.CreateApiKey, pb.CreateApiKeyRequest(account_id=args.account_id), metadata)
    except CliError as exc:
        return fail(str(exc))
    print(json.dumps({"key_id": key.key_id, "api_key": key.api_key}))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        call(stub.RevokeApiKey, pb.RevokeApiKeyRequest(key_id=args.key_id), metadata)
    except CliError as exc:
        return fail(str(exc))
    print(f"revoked {args.key_id}")
    return 0
