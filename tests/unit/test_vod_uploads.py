"""An uploaded certificate: its key must match the leaf, its chain is put in order and must
verify for the domain against the configured roots (a real test PKI, no mocks)."""

from __future__ import annotations

import asyncio

import pytest

from certwatch.vod import cname, uploads
from certwatch.vod.errors import ApiError
from tests.support.pki import TestPKI


def test_the_chain_is_ordered_leaf_first_and_the_wildcard_checked() -> None:
    with TestPKI(label="Upload") as pki:
        leaf = pki.leaf("*.wild.test", dns=("*.wild.test",))
        checked = uploads.check("*.wild.test", (pki.intermediate.pem + leaf.pem).decode(), leaf.key_pem.decode(),
                                ca_file=pki.ca_file)  # fmt: skip
        assert checked.chain_pem == (leaf.pem + pki.intermediate.pem).decode()
        assert (checked.leaf.common_name, checked.leaf.issuer_org) == ("*.wild.test", "Upload Issuing")
        assert checked.leaf.dns_names == ("*.wild.test",)


@pytest.mark.parametrize(
    ("case", "code"),
    [("other key", "InvalidCertificate.KeyMismatch"), ("other name", "InvalidCertificate"),
     ("no intermediate", "InvalidCertificate"), ("not PEM", "InvalidParameter"), ("bad key", "InvalidParameter")],
)  # fmt: skip
def test_refusals_name_the_rule(case: str, code: str) -> None:
    with TestPKI(label="Upload") as pki:
        leaf = pki.leaf("www.up.test")
        chain, key, domain = (leaf.pem + pki.intermediate.pem).decode(), leaf.key_pem.decode(), "www.up.test"
        if case == "other key":
            key = pki.intermediate.key_pem.decode()  # in the chain, but not the leaf's
        elif case == "other name":
            domain = "www.elsewhere.test"
        elif case == "no intermediate":
            chain = leaf.pem.decode()
        elif case == "not PEM":
            chain = "certificate"
        else:
            key = "key"
        with pytest.raises(ApiError) as err:
            uploads.check(domain, chain, key, ca_file=pki.ca_file)
        assert err.value.code == code and err.value.field in ("SSLPub", "SSLPri")


def test_without_nameservers_the_system_resolver_gives_the_canonical_name() -> None:
    assert asyncio.run(cname.lookup("localhost", "cdn.test", ())) is cname.Cname.ELSEWHERE
    assert asyncio.run(cname.lookup("localhost", "localhost", ())) is cname.Cname.OK
