"""`certwatch vod ...`: AccessKey pairs for the VOD certificate API (Alibaba Cloud's SDKs)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf.json_format import MessageToDict

from certwatch.cli.client import CliError, add_connection_options, call, connect, fail, table
from certwatch.v1 import vod_pb2 as pb
from certwatch.v1 import vod_pb2_grpc


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("vod", help="the VOD certificate API (Alibaba Cloud VOD compatible)")
    groups = parser.add_subparsers(dest="vod_command", required=True)
    keys = groups.add_parser("keys", help="AccessKey pairs the VOD HTTP API accepts").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="a new pair; the secret is printed this once only")
    add_connection_options(create)
    create.set_defaults(handler=_create)
    lst = keys.add_parser("list", help="the account's keys, live and revoked (no secrets)")
    add_connection_options(lst)
    lst.set_defaults(handler=_list)
    revoke = keys.add_parser("revoke", help="refuse the key from now on")
    revoke.add_argument("id", help="the AccessKeyId")
    add_connection_options(revoke)
    revoke.set_defaults(handler=_revoke)


def _stub(args: argparse.Namespace) -> tuple[vod_pb2_grpc.VodStub, Any]:
    channel, metadata = connect(args, "vod")
    return vod_pb2_grpc.VodStub(channel), metadata


def _create(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        key = call(stub.CreateAccessKey, pb.CreateAccessKeyRequest(), metadata)
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps({"AccessKeyId": key.access_key_id, "AccessKeySecret": key.access_key_secret}))
    else:
        print(f"AccessKeyId      {key.access_key_id}\nAccessKeySecret  {key.access_key_secret}")
        print("The secret is shown this once: store it now.")
    return 0


def _when(info: pb.AccessKeyInfo, field: str) -> str:
    return getattr(info, field).ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if info.HasField(field) else "-"


def _list(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        keys = list(call(stub.ListAccessKeys, pb.ListAccessKeysRequest(), metadata).keys)
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([MessageToDict(k, preserving_proto_field_name=True) for k in keys], indent=2))
    else:
        rows = [[k.access_key_id, _when(k, "created_at"), "revoked " + _when(k, "revoked_at")
                 if k.HasField("revoked_at") else "live"] for k in keys]  # fmt: skip
        print(table(rows, ["ACCESS KEY ID", "CREATED (UTC)", "STATE"]))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        call(stub.RevokeAccessKey, pb.RevokeAccessKeyRequest(access_key_id=args.id), metadata)
    except CliError as exc:
        return fail(str(exc))
    print(f"revoked {args.id}")
    return 0
