"""The Hosting gRPC service: the use cases of the caller's account (`auth.current()`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from certwatch.hosting import lifecycle
from certwatch.hosting.use_cases import CertificateRow, HostingUseCases, InstanceView
from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument
from certwatch.v1 import hosting_pb2 as pb
from certwatch.v1 import hosting_pb2_grpc

MAX_PEM = 256 * 1024


def _ts(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def instance_message(i: lifecycle.Instance, last_failure: str | None = None) -> pb.Instance:
    view = InstanceView(i, last_failure)
    return pb.Instance(
        id=i.instance_id, state=i.state.value, year=i.year, subscription_id=i.subscription_id,
        certificate_id=i.current.certificate_id if i.current else "", next_renewal=_ts(view.next_renewal),
        domains=i.application.names if i.application else [], last_failure=last_failure or "",
    )  # fmt: skip


def certificate_message(c: CertificateRow) -> pb.HostedCertificate:
    return pb.HostedCertificate(
        id=c.id, instance_id=c.instance_id or "", serial=c.serial, not_before=_ts(c.not_before),
        not_after=_ts(c.not_after), names=c.names, issuer=c.issuer, uploaded=c.uploaded,
    )  # fmt: skip


def _caller() -> tuple[str, str]:
    principal = auth.current()
    return str(principal.account_id), principal.key_id


class HostingApi(hosting_pb2_grpc.HostingServicer):
    def __init__(self, use_cases: HostingUseCases) -> None:
        self._uc = use_cases

    async def Subscribe(self, request: pb.SubscribeRequest, context: Any) -> pb.Subscription:
        account, actor = _caller()
        subscription_id, instances = await self._uc.subscribe(account, request.years, actor)
        return pb.Subscription(id=subscription_id, instances=[instance_message(i) for i in instances])

    async def ListInstances(self, request: pb.ListInstancesRequest, context: Any) -> pb.ListInstancesResponse:
        account, _ = _caller()
        views = await self._uc.instances(account)
        return pb.ListInstancesResponse(
            instances=[instance_message(v.instance, v.last_failure) for v in views]
        )

    async def Apply(self, request: pb.ApplyRequest, context: Any) -> pb.Instance:
        account, actor = _caller()
        applied = await self._uc.apply(
            account, request.instance_id, list(request.domains), request.key_type, request.company,
            request.contact_email, request.validation, actor,
        )  # fmt: skip
        return instance_message(applied)

    async def GetLifecycle(self, request: pb.InstanceRef, context: Any) -> pb.Lifecycle:
        account, _ = _caller()
        view = await self._uc.lifecycle(account, request.instance_id)
        entries = [
            pb.LifecycleEntry(state=p.state.value, at=_ts(p.at), reason=p.reason)
            for p in view.instance.history
        ]
        return pb.Lifecycle(instance=instance_message(view.instance, view.last_failure), entries=entries)

    async def RenewNow(self, request: pb.InstanceRef, context: Any) -> pb.Instance:
        account, actor = _caller()
        return instance_message(await self._uc.renew_now(account, request.instance_id, actor))

    async def UploadCertificate(
        self, request: pb.UploadCertificateRequest, context: Any
    ) -> pb.HostedCertificate:
        account, actor = _caller()
        for field in ("cert_pem", "key_pem", "chain_pem"):
            if len(getattr(request, field)) > MAX_PEM:
                raise InvalidArgument([(field, f"at most {MAX_PEM} bytes")])
        row = await self._uc.upload(
            account, request.cert_pem.encode(), request.key_pem.encode(), request.chain_pem.encode(), actor
        )
        return certificate_message(row)

    async def ListCertificates(
        self, request: pb.ListCertificatesRequest, context: Any
    ) -> pb.ListCertificatesResponse:
        account, _ = _caller()
        return pb.ListCertificatesResponse(
            certificates=[certificate_message(c) for c in await self._uc.certificates(account)]
        )

    async def DownloadCertificate(
        self, request: pb.DownloadCertificateRequest, context: Any
    ) -> pb.DownloadCertificateResponse:
        account, _ = _caller()
        row, content = await self._uc.download(
            account, request.certificate_id, request.format, request.password
        )
        return pb.DownloadCertificateResponse(certificate=certificate_message(row), content=content)

    async def DeleteCertificate(
        self, request: pb.DeleteCertificateRequest, context: Any
    ) -> pb.DeleteCertificateResponse:
        account, actor = _caller()
        await self._uc.delete_certificate(account, request.certificate_id, actor)
        return pb.DeleteCertificateResponse()


def registration(api: HostingApi) -> tuple[Any, Any, str]:
    return (hosting_pb2_grpc.add_HostingServicer_to_server, api, "certwatch.v1.Hosting")
