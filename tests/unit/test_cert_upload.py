"""The one check every certificate upload passes (hosting's and the VOD API's), on a real
test PKI: which part is refused, by which rule, and what is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certwatch.platform.cert_upload import Part, Refusal, UploadRefused, check_upload
from tests.support.pki import TestPKI


def test_a_bundle_pasted_in_any_order_is_kept_leaf_first_without_the_anchor() -> None:
    with TestPKI(label="Shared") as pki:
        leaf = pki.leaf("shop.example.test")
        checked = check_upload(
            pki.root.pem + pki.intermediate.pem + leaf.pem, leaf.key_pem, ca_file=pki.ca_file
        )
        assert checked.leaf.subject == leaf.cert.subject
        assert checked.chain == [pki.intermediate.cert]
        assert checked.chain_pem == (leaf.pem + pki.intermediate.pem).decode()
        assert b"BEGIN PRIVATE KEY" in checked.key_pem  # PKCS#8, as it is sealed


def _refusal(pki: TestPKI, case: str) -> UploadRefused:
    leaf = pki.leaf("www.up.test")
    cert, key, chain, name = leaf.pem, leaf.key_pem, pki.intermediate.pem, None
    now = datetime.now(UTC)
    if case == "other key":
        key = pki.leaf("other.up.test").key_pem
    elif case == "not pem":
        cert = b"hello"
    elif case == "chain not pem":
        chain = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    elif case == "bad key":
        key = b"key"
    elif case == "expired":
        old = pki.leaf("old.up.test", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1))
        cert, key = old.pem, old.key_pem
    elif case == "not yet valid":
        new = pki.leaf("new.up.test", not_before=now + timedelta(days=1), not_after=now + timedelta(days=30))
        cert, key = new.pem, new.key_pem
    elif case == "no intermediate":
        chain = b""
    elif case == "other name":
        name = "www.elsewhere.test"
    with pytest.raises(UploadRefused) as refused:
        check_upload(cert, key, chain, ca_file=pki.ca_file, name=name)
    return refused.value


@pytest.mark.parametrize(
    ("case", "part", "kind", "rule"),
    [
        ("other key", Part.KEY, Refusal.KEY_MISMATCH, "does not match the certificate's public key"),
        ("not pem", Part.CERT, Refusal.MALFORMED, "not PEM certificates"),
        ("chain not pem", Part.CHAIN, Refusal.MALFORMED, "not PEM certificates"),
        ("bad key", Part.KEY, Refusal.MALFORMED, "not an unencrypted PEM private key"),
        ("expired", Part.CERT, Refusal.REFUSED, "expired on "),
        ("not yet valid", Part.CERT, Refusal.REFUSED, "not valid before "),
        ("no intermediate", Part.CHAIN, Refusal.REFUSED, "its chain does not verify for www.up.test against"),
        ("other name", Part.CHAIN, Refusal.REFUSED, "its chain does not verify for www.elsewhere.test"),
    ],
)
def test_each_refusal_names_its_part_and_rule(case: str, part: Part, kind: Refusal, rule: str) -> None:
    with TestPKI(label="Shared") as pki:
        refused = _refusal(pki, case)
    assert (refused.part, refused.kind) == (part, kind)
    assert refused.rule.startswith(rule), refused.rule


def test_a_root_missing_from_the_trust_store_is_refused() -> None:
    with TestPKI(label="Shared") as pki, TestPKI(label="Other") as other:
        leaf = pki.leaf("www.up.test")
        with pytest.raises(UploadRefused) as refused:
            check_upload(leaf.pem, leaf.key_pem, pki.intermediate.pem + pki.root.pem, ca_file=other.ca_file)
    assert refused.value.part == Part.CHAIN and "trust store" in refused.value.rule
