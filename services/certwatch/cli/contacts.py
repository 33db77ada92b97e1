"""`certwatch contacts ...`: alert contacts (name, phone, email, DingTalk, WeCom and Lark robots, a
signed webhook, an Apprise URL)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from certwatch.cli import alerts
from certwatch.cli.client import CliError, add_connection_options, as_json, call, connect, fail, table
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc

_FIELDS = ("name", "phone", "email", "dingtalk_webhook", "wecom_webhook", "lark_webhook", "webhook_url")
# Never shown again once stored.
_SECRETS = {
    "dingtalk_secret": "DingTalk robot signing secret (SEC...)",
    "lark_secret": "Lark/Feishu bot signing secret",
    "webhook_secret": "secret the webhook's X-Certwatch-Signature is made with (16-128 characters)",
    "apprise_url": "any other service as an Apprise URL (tgram://..., slack://..., ntfy://...)",
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("contacts", help="manage alert contacts (at most 3 per domain)")
    sub = parser.add_subparsers(dest="contacts_command", required=True)
    for name, help_text in (("add", "add a contact"),
                            ("update", "change the given fields of a contact (an empty value clears one)")):  # fmt: skip
        cmd = sub.add_parser(name, help=help_text)
        if name == "update":
            cmd.add_argument("id")
        cmd.add_argument("--name", required=name == "add")
        for field in _FIELDS[1:]:
            cmd.add_argument(f"--{field.replace('_', '-')}")
        for field, help_secret in _SECRETS.items():
            cmd.add_argument(f"--{field.replace('_', '-')}", help=help_secret)
        add_connection_options(cmd)
        cmd.set_defaults(handler=_save, action=name)
    lst = sub.add_parser("list", help="list contacts")
    add_connection_options(lst)
    lst.set_defaults(handler=_list)
    rm = sub.add_parser("remove", help="delete a contact")
    rm.add_argument("id")
    rm.add_argument("--detach", action="store_true", help="also remove it from the domains that use it")
    add_connection_options(rm)
    rm.set_defaults(handler=_remove)
    alerts.add_contact_test(sub)


def _stub(args: argparse.Namespace) -> tuple[inventory_pb2_grpc.InventoryStub, Any]:
    channel, metadata = connect(args, "inventory")
    return inventory_pb2_grpc.InventoryStub(channel), metadata


def _rows(contacts: list[pb.Contact]) -> str:
    return table(
        [[c.id, c.name, c.phone or "-", c.email or "-", ",".join(_robots(c)) or "-", str(len(c.domain_ids))]
         for c in contacts],
        ["ID", "NAME", "PHONE", "EMAIL", "ROBOTS", "DOMAINS"],
    )  # fmt: skip


def _robots(c: pb.Contact) -> list[str]:
    present = (("dingtalk", c.dingtalk_webhook), ("wecom", c.wecom_webhook), ("lark", c.lark_webhook),
               ("webhook", c.webhook_url), ("apprise", c.has_apprise_url))  # fmt: skip
    return [name for name, there in present if there]


def _save(args: argparse.Namespace) -> int:
    given = {f: getattr(args, f) for f in (*_FIELDS, *_SECRETS) if getattr(args, f) is not None}
    contact = pb.ContactInput(**given)
    try:
        if args.action == "update" and not given:
            names = ", --".join(f.replace("_", "-") for f in (*_FIELDS, *_SECRETS))
            raise CliError(f"give at least one field to change: --{names}")
        stub, metadata = _stub(args)
        if args.action == "add":
            saved = call(stub.CreateContact, contact, metadata)
        else:
            request = pb.UpdateContactRequest(
                id=args.id, contact=contact, update_mask=FieldMask(paths=list(given))
            )
            saved = call(stub.UpdateContact, request, metadata)
    except CliError as exc:
        return fail(str(exc))
    print(json.dumps(as_json(saved)) if args.json else _rows([saved]))
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        contacts = list(call(stub.ListContacts, pb.ListContactsRequest(), metadata).contacts)
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([as_json(c) for c in contacts], indent=2))
    else:
        print(_rows(contacts))
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        result = call(stub.DeleteContact, pb.DeleteContactRequest(id=args.id, detach=args.detach), metadata)
    except CliError as exc:
        return fail(str(exc))
    detached = (
        f" (detached from {len(result.detached_domain_ids)} domains)" if result.detached_domain_ids else ""
    )
    print(f"removed {args.id}{detached}")
    return 0
