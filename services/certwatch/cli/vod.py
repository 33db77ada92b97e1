"""`certwatch vod ...`: AccessKey pairs for the VOD certificate API (Alibaba Cloud's SDKs)
and the accelerated domains it answers for."""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from certwatch.cli.client import CliError, add_connection_options, as_json, call, connect, fail, table
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

    domains = groups.add_parser("domains", help="accelerated domains and their certificates").add_subparsers(
        dest="domains_command", required=True
    )
    add = domains.add_parser("add", help="add an accelerated domain")
    add.add_argument("domain")
    add.add_argument("--origin", action="append", default=[], metavar="HOST",
                     help="an origin server (IP address or host name); repeatable")  # fmt: skip
    add.add_argument("--scope", choices=("domestic", "overseas", "global"), default="domestic")
    add_connection_options(add)
    add.set_defaults(handler=_add)
    lst = domains.add_parser("list", help="the account's accelerated domains")
    lst.add_argument("--filter", default="", help="only names containing this")
    add_connection_options(lst)
    lst.set_defaults(handler=_domains)
    cert = domains.add_parser("set-cert", help="set the domain's certificate, or turn SSL off")
    cert.add_argument("domain")
    cert.add_argument("--cert-type", choices=("free", "cas", "upload", "off"), required=True)
    cert.add_argument("--cert", type=Path, help="upload: PEM file with the certificate and its chain")
    cert.add_argument("--key", type=Path, help="upload: PEM file with its private key")
    cert.add_argument("--cert-id", help="cas: the CertId of a certificate uploaded before")
    cert.add_argument("--name", default="", help="the certificate's name (default: its common name)")
    add_connection_options(cert)
    cert.set_defaults(handler=_set_cert)
    remove = domains.add_parser("remove", help="remove an accelerated domain")
    remove.add_argument("domain")
    add_connection_options(remove)
    remove.set_defaults(handler=_remove)


def _rpc(args: argparse.Namespace, method: str, request: Any) -> Any:
    channel, metadata = connect(args, "vod")
    return call(getattr(vod_pb2_grpc.VodStub(channel), method), request, metadata)


def _refusing(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A refusal (`CliError`) is printed as one line, exit status 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as exc:
            return fail(str(exc))

    return run


@_refusing
def _create(args: argparse.Namespace) -> int:
    key = _rpc(args, "CreateAccessKey", pb.CreateAccessKeyRequest())
    if args.json:
        print(json.dumps({"AccessKeyId": key.access_key_id, "AccessKeySecret": key.access_key_secret}))
    else:
        print(f"AccessKeyId      {key.access_key_id}\nAccessKeySecret  {key.access_key_secret}")
        print("The secret is shown this once: store it now.")
    return 0


def _when(info: pb.AccessKeyInfo, field: str) -> str:
    return getattr(info, field).ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if info.HasField(field) else "-"


@_refusing
def _list(args: argparse.Namespace) -> int:
    keys = list(_rpc(args, "ListAccessKeys", pb.ListAccessKeysRequest()).keys)
    if args.json:
        print(json.dumps([as_json(k) for k in keys], indent=2))
    else:
        rows = [[k.access_key_id, _when(k, "created_at"), "revoked " + _when(k, "revoked_at")
                 if k.HasField("revoked_at") else "live"] for k in keys]  # fmt: skip
        print(table(rows, ["ACCESS KEY ID", "CREATED (UTC)", "STATE"]))
    return 0


@_refusing
def _revoke(args: argparse.Namespace) -> int:
    _rpc(args, "RevokeAccessKey", pb.RevokeAccessKeyRequest(access_key_id=args.id))
    print(f"revoked {args.id}")
    return 0


def _origin(text: str) -> pb.Origin:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return pb.Origin(content=text, type="domain")
    return pb.Origin(content=text, type="ipaddr")


def _domain_rows(domains: list[pb.VodDomain]) -> str:
    rows = [[d.domain_name, d.cname or "-", "on" if d.ssl_protocol == "on" else "off", d.cert_type or "-",
             d.cert_id or "-", ",".join(o.content for o in d.sources) or "-"] for d in domains]  # fmt: skip
    return table(rows, ["DOMAIN", "CNAME", "SSL", "CERT TYPE", "CERT ID", "ORIGINS"])


def _print_domain(args: argparse.Namespace, domain: pb.VodDomain) -> None:
    print(json.dumps(as_json(domain)) if args.json else _domain_rows([domain]))


@_refusing
def _add(args: argparse.Namespace) -> int:
    request = pb.AddVodDomainRequest(domain_name=args.domain, scope=args.scope,
                                     sources=[_origin(o) for o in args.origin])  # fmt: skip
    _print_domain(args, _rpc(args, "AddDomain", request))
    return 0


@_refusing
def _domains(args: argparse.Namespace) -> int:
    found: list[pb.VodDomain] = []
    for page in range(1, 10_000):  # 50 a page
        answer = _rpc(args, "ListDomains", pb.ListVodDomainsRequest(domain_name=args.filter, page_number=page,
                                                                   page_size=50))  # fmt: skip
        found += answer.domains
        if len(found) >= answer.total_count or not answer.domains:
            break
    if args.json:
        print(json.dumps([as_json(d) for d in found], indent=2))
    else:
        print(_domain_rows(found))
    return 0


def _read(path: Path | None, flag: str) -> str:
    if path is None:
        raise CliError(f"--cert-type upload needs {flag} FILE")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{flag} {path}: cannot read it ({exc})") from None


@_refusing
def _set_cert(args: argparse.Namespace) -> int:
    request = pb.SetVodDomainCertificateRequest(domain_name=args.domain, cert_name=args.name,
                                                ssl_protocol="off" if args.cert_type == "off" else "on")  # fmt: skip
    if args.cert_type != "off":
        request.cert_type = args.cert_type
    if args.cert_type == "upload":
        request.certificate_pem, request.private_key_pem = (
            _read(args.cert, "--cert"),
            _read(args.key, "--key"),
        )
    elif args.cert_type == "cas":
        if not args.cert_id:
            raise CliError("--cert-type cas needs --cert-id ID (see `certwatch vod domains list`)")
        request.cert_id = args.cert_id
    _print_domain(args, _rpc(args, "SetDomainCertificate", request))
    return 0


@_refusing
def _remove(args: argparse.Namespace) -> int:
    _rpc(args, "RemoveDomain", pb.RemoveVodDomainRequest(domain_name=args.domain))
    print(f"removed {args.domain}")
    return 0
