"""A free certificate's Status from hosting's instance events: only an instance's first
certificate is `applying` or `failed`; a renewal's order leaves `success` as it is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from certwatch.contracts import hosting as hc
from certwatch.vod.hosting_views import order_status

AT = datetime(2026, 12, 2, tzinfo=UTC)
BASE: dict[str, Any] = {"instance_id": "i-1", "account_id": "a-1", "at": AT}
CERT = hc.Certificate(
    serial="01", not_before=AT, not_after=AT, names=["a.test"], issuer="CA", cert_pem="", chain_pem=""
)
ORDER = {"attempt_id": "t-1", "certificate_id": "c-1", "csr_pem": "", "sealed_key": ""}
FAILED = {"attempt_id": "t-1", "order_url": None, "kind": hc.FailureKind.CA_ERROR, "detail": "", "failures": 1,
          "retry_at": AT, "order_abandoned": True}  # fmt: skip
ISSUED = {"certificate_id": "c-1", "certificate": CERT, "sealed_key": "", "order_url": "", "renew_at": AT,
          "renew_source": "lifetime"}  # fmt: skip
APPLICATION = hc.Application(names=["a.test"], key_type=hc.KeyType.EC256, company="", contact_email="",
                             validation=hc.Validation.HTTP_01)  # fmt: skip


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (hc.ApplicationSubmitted(**BASE, application=APPLICATION, automatic=False), "applying"),
        (hc.OrderRequested(**BASE, **ORDER, renewal=False), "applying"),
        (hc.OrderRequested(**BASE, **ORDER, renewal=True), None),
        (hc.OrderPlaced(**BASE, attempt_id="t-1", order_url=""), None),
        (hc.OrderFailed(**BASE, **FAILED, renewal=False), "failed"),
        (hc.OrderFailed(**BASE, **FAILED, renewal=True), None),
        (hc.CertificateIssued(**BASE, **ISSUED), "success"),
        (hc.CertificateRenewed(**BASE, **ISSUED), "success"),
        (hc.RenewalRequested(**BASE), None),
    ],
)
def test_order_status(event: hc.InstanceEvent, status: str | None) -> None:
    assert order_status(event) == status
