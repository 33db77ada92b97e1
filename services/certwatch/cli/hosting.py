"""`certwatch hosting ...` (hosted certificate instances) and `certwatch certs ...` (certificates).

In JSON an instance has `id`, `state`, `year` and `certificate_id` (its current certificate),
a certificate `id`, `instance_id`, `serial`, `not_before`, `not_after`, `names` and `issuer`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from certwatch.cli.client import CliError, add_connection_options, call, connect, fail, positive_int, table
from certwatch.v1 import hosting_pb2 as pb
from certwatch.v1 import hosting_pb2_grpc


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hosting", help="certificate hosting: instances issued and renewed by ACME"
    )
    sub = parser.add_subparsers(dest="hosting_command", required=True)
    subscribe = sub.add_parser(
        "subscribe", help="a 2- or 3-year subscription: one certificate instance a year"
    )
    subscribe.add_argument("--years", type=positive_int, required=True)
    subscribe.set_defaults(handler=_subscribe)
    lst = sub.add_parser("list", help="instances, their state, current certificate and next renewal")
    lst.set_defaults(handler=_list)
    apply = sub.add_parser("apply", help="submit the application of a PENDING_APPLICATION instance")
    apply.add_argument("instance_id")
    apply.add_argument("--domain", action="append", required=True, help="a name; repeat for SANs")
    apply.add_argument("--key-type", default="ec256", help="ec256 (default) or rsa2048")
    apply.add_argument("--validation", default="http-01", help="http-01 (default) or dns-01")
    apply.add_argument("--company", required=True)
    apply.add_argument("--contact-email", required=True)
    apply.set_defaults(handler=_apply)
    life = sub.add_parser("lifecycle", help="every state an instance passed, with time and reason")
    life.add_argument("instance_id")
    life.set_defaults(handler=_lifecycle)
    renew = sub.add_parser("renew", help="renew a HOSTED instance now")
    renew.add_argument("instance_id")
    renew.set_defaults(handler=_renew)
    for cmd in (subscribe, lst, apply, life, renew):
        add_connection_options(cmd)

    certs = subparsers.add_parser("certs", help="certificates: hosted ones and uploads")
    csub = certs.add_subparsers(dest="certs_command", required=True)
    upload = csub.add_parser("upload", help="upload a certificate issued elsewhere (PEM)")
    upload.add_argument("--cert", required=True, help="PEM certificate file (may hold the chain after it)")
    upload.add_argument("--key", required=True, help="PEM private key file")
    upload.add_argument("--chain", help="PEM chain file, leaf's issuer first")
    upload.set_defaults(handler=_upload)
    clist = csub.add_parser("list", help="the account's certificates")
    clist.set_defaults(handler=_certs)
    download = csub.add_parser("download", help="certificate, chain and key as PEM, or PKCS#12")
    download.add_argument("certificate_id")
    download.add_argument("--format", choices=("pem", "pfx"), default="pem")
    download.add_argument("-o", "--output", required=True, help="file to write")
    download.add_argument("--password", default="", help="PKCS#12 password (default: none)")
    download.set_defaults(handler=_download)
    delete = csub.add_parser("delete", help="destroy a certificate's key (crypto-shredding)")
    delete.add_argument("certificate_id")
    delete.set_defaults(handler=_delete)
    for cmd in (upload, clist, download, delete):
        add_connection_options(cmd)


def _stub(args: argparse.Namespace) -> tuple[hosting_pb2_grpc.HostingStub, Any]:
    channel, metadata = connect(args, "hosting")
    return hosting_pb2_grpc.HostingStub(channel), metadata


def _when(ts: Timestamp, present: bool = True) -> str | None:
    if not present:
        return None
    return str(ts.ToDatetime().isoformat() + "Z")


def instance_json(i: pb.Instance) -> dict[str, Any]:
    return {
        "id": i.id, "state": i.state, "year": i.year, "certificate_id": i.certificate_id or None,
        "subscription_id": i.subscription_id, "domains": list(i.domains),
        "next_renewal": _when(i.next_renewal, i.HasField("next_renewal")), "last_failure": i.last_failure or None,
    }  # fmt: skip


def certificate_json(c: pb.HostedCertificate) -> dict[str, Any]:
    return {
        "id": c.id, "instance_id": c.instance_id or None, "serial": c.serial, "not_before": _when(c.not_before),
        "not_after": _when(c.not_after), "names": list(c.names), "issuer": c.issuer, "uploaded": c.uploaded,
    }  # fmt: skip


def _instances(instances: list[pb.Instance]) -> str:
    return table(
        [[i.id, str(i.year), i.state, i.certificate_id or "-", ",".join(i.domains) or "-",
          _when(i.next_renewal, i.HasField("next_renewal")) or "-", i.last_failure or ""] for i in instances],
        ["ID", "YEAR", "STATE", "CERTIFICATE", "DOMAINS", "NEXT RENEWAL", "LAST FAILURE"],
    )  # fmt: skip


def _certificates(certs: list[pb.HostedCertificate]) -> str:
    return table(
        [[c.id, c.instance_id or "(uploaded)", c.serial, _when(c.not_after) or "-", ",".join(c.names), c.issuer]
         for c in certs],
        ["ID", "INSTANCE", "SERIAL", "NOT AFTER", "NAMES", "ISSUER"],
    )  # fmt: skip


def _run(args: argparse.Namespace, fn: Any) -> int:
    try:
        stub, metadata = _stub(args)
        return int(fn(stub, metadata))
    except CliError as exc:
        return fail(str(exc))


def _print(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        sub = call(stub.Subscribe, pb.SubscribeRequest(years=args.years), md)
        data = {"id": sub.id, "instances": [instance_json(i) for i in sub.instances]}
        return _print(args, data, f"subscription {sub.id}\n{_instances(list(sub.instances))}")

    return _run(args, go)


def _list(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        instances = list(call(stub.ListInstances, pb.ListInstancesRequest(), md).instances)
        return _print(args, [instance_json(i) for i in instances], _instances(instances))

    return _run(args, go)


def _apply(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        request = pb.ApplyRequest(
            instance_id=args.instance_id, domains=args.domain, key_type=args.key_type, company=args.company,
            contact_email=args.contact_email, validation=args.validation,
        )  # fmt: skip
        instance = call(stub.Apply, request, md)
        return _print(args, instance_json(instance), _instances([instance]))

    return _run(args, go)


def _lifecycle(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        life = call(stub.GetLifecycle, pb.InstanceRef(instance_id=args.instance_id), md)
        entries = [{"state": e.state, "at": _when(e.at), "reason": e.reason} for e in life.entries]
        text = table([[e["state"], e["at"] or "", e["reason"]] for e in entries], ["STATE", "AT", "REASON"])
        return _print(args, {"instance": instance_json(life.instance), "lifecycle": entries}, text)

    return _run(args, go)


def _renew(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        instance = call(stub.RenewNow, pb.InstanceRef(instance_id=args.instance_id), md)
        return _print(args, instance_json(instance), _instances([instance]))

    return _run(args, go)


def _read(path: str | None, flag: str) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{flag}: cannot read {path}: {exc}") from None


def _upload(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        request = pb.UploadCertificateRequest(cert_pem=_read(args.cert, "--cert"), key_pem=_read(args.key, "--key"),
                                              chain_pem=_read(args.chain, "--chain"))  # fmt: skip
        cert = call(stub.UploadCertificate, request, md)
        return _print(args, certificate_json(cert), _certificates([cert]))

    return _run(args, go)


def _certs(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        certs = list(call(stub.ListCertificates, pb.ListCertificatesRequest(), md).certificates)
        return _print(args, [certificate_json(c) for c in certs], _certificates(certs))

    return _run(args, go)


def _download(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        request = pb.DownloadCertificateRequest(certificate_id=args.certificate_id, format=args.format,
                                                password=args.password)  # fmt: skip
        got = call(stub.DownloadCertificate, request, md)
        try:
            out = Path(args.output)
            out.touch(mode=0o600)
            out.chmod(0o600)  # it holds a private key
            out.write_bytes(got.content)
        except OSError as exc:
            raise CliError(f"-o: cannot write {args.output}: {exc}") from None
        data = {**certificate_json(got.certificate), "format": args.format, "file": args.output}
        return _print(args, data, f"wrote {args.output} ({args.format}) for certificate {got.certificate.id}")

    return _run(args, go)


def _delete(args: argparse.Namespace) -> int:
    def go(stub: Any, md: Any) -> int:
        call(stub.DeleteCertificate, pb.DeleteCertificateRequest(certificate_id=args.certificate_id), md)
        data = {"id": args.certificate_id, "deleted": True}
        return _print(args, data, f"deleted {args.certificate_id}: its key is destroyed")

    return _run(args, go)
