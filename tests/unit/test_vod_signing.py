"""Signature verification against requests captured from the official SDK
(alibabacloud-vod20170321 3.12.1 / tea-openapi 0.4.6, AccessKey AKID / SECRET,
DomainName "a b~ü.example.com": a space, a tilde and a non-ASCII letter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certwatch.vod import signing
from certwatch.vod.errors import ApiError
from certwatch.vod.http_api import parse_params

_SDK = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
ACS3_VECTOR = {
    "target": "/?DomainName=a+b~%C3%BC.example.com",
    "headers": {
        "accept-encoding": "identity", "host": "127.0.0.1:42675", "x-acs-version": "2017-03-21",
        "x-acs-action": "DescribeVodDomainCertificateInfo", "user-agent": _SDK,
        "x-acs-date": "2026-12-02T00:13:48Z", "x-acs-signature-nonce": "b83e4ab686f468164a35dddf405164cc",
        "accept": "application/json",
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-acs-credentials-provider": "static_ak",
        "authorization": "ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=accept;host;user-agent;"
        "x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;"
        "x-acs-signature-nonce;x-acs-version,"
        "Signature=6fc42460a338b48b0256570977c549f52b1c6e2d4dc845c1a95c31b0a888d2f5",
        "content-length": "0",
    },
}  # fmt: skip
RPC_V1_VECTOR = {
    "target": "/?Action=DescribeVodDomainCertificateInfo&Format=json&Version=2017-03-21"
    "&Timestamp=2026-12-02T00%3A13%3A48Z&SignatureNonce=65066a61305dac2fae1d1e83c44ee1b3"
    "&DomainName=a+b~%C3%BC.example.com&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0"
    "&AccessKeyId=AKID&Signature=foFAGd4oGemmGdatzuMKMxo6xQU%3D",
    "headers": {
        "accept-encoding": "identity", "host": "127.0.0.1:42675", "x-acs-version": "2017-03-21",
        "x-acs-action": "DescribeVodDomainCertificateInfo", "user-agent": _SDK,
        "x-acs-credentials-provider": "static_ak", "content-length": "0",
    },
}  # fmt: skip
SIGNED_AT = datetime(2026, 12, 2, 0, 13, 48, tzinfo=UTC)


def request(
    vector: dict[str, Any], *, method: str = "POST", body: bytes = b"", **changed: str
) -> signing.Request:
    path, _, query = vector["target"].partition("?")
    headers = {**vector["headers"], **changed}
    return signing.Request(method, path, parse_params(query, "query"), {},
                           {k: [v] for k, v in headers.items()}, body)  # fmt: skip


@pytest.mark.parametrize("vector, scheme", [(ACS3_VECTOR, signing.ACS3), (RPC_V1_VECTOR, signing.RPC_V1)])
def test_the_sdks_signatures_verify_with_its_secret_only(vector: dict[str, Any], scheme: str) -> None:
    claim = signing.parse(request(vector))
    assert (claim.scheme, claim.access_key_id, claim.timestamp) == (scheme, "AKID", SIGNED_AT)
    assert signing.Secret("SECRET").signs(claim)
    assert not signing.Secret("SECRET2").signs(claim)
    assert not signing.Secret("SECRET").signs(signing.parse(request(vector, method="GET")))


def test_a_changed_parameter_or_signed_header_breaks_the_signature() -> None:
    for vector in (ACS3_VECTOR, RPC_V1_VECTOR):
        tampered = dict(vector, target=vector["target"].replace("a+b", "a+c"))
        assert not signing.Secret("SECRET").signs(signing.parse(request(tampered)))
    claim = signing.parse(request(ACS3_VECTOR, **{"x-acs-action": "DeleteVodDomain"}))
    assert not signing.Secret("SECRET").signs(claim)


def test_acs3_refuses_unsigned_acs_headers_and_a_body_not_matching_its_hash() -> None:
    with pytest.raises(ApiError) as err:
        signing.parse(request(ACS3_VECTOR, **{"x-acs-extra": "1"}))
    assert err.value.code == "IncompleteSignature" and "x-acs-extra" in err.value.message
    with pytest.raises(ApiError) as err:
        signing.parse(request(ACS3_VECTOR, body=b"DomainName=other.example"))
    assert err.value.code == "SignatureDoesNotMatch"


def test_rpc_v1_requires_its_parameters_and_hmac_sha1() -> None:
    with pytest.raises(ApiError) as err:
        signing.parse(
            request(dict(RPC_V1_VECTOR, target=RPC_V1_VECTOR["target"].replace("&SignatureNonce=", "&X=")))
        )
    assert (err.value.code, "SignatureNonce" in err.value.message) == ("MissingParameter", True)
    with pytest.raises(ApiError) as err:
        signing.parse(
            request(dict(RPC_V1_VECTOR, target=RPC_V1_VECTOR["target"].replace("HMAC-SHA1", "HMAC-MD5")))
        )
    assert err.value.code == "InvalidParameter"
    with pytest.raises(ApiError) as err:
        signing.parse(
            request(dict(RPC_V1_VECTOR, target=RPC_V1_VECTOR["target"].replace("2026-12-02T", "02.12.2026T")))
        )
    assert err.value.code == "InvalidTimeStamp.Format"


def test_a_nonce_postgresql_cannot_store_is_refused_before_it_joins_a_batch() -> None:
    for vector, changed in ((RPC_V1_VECTOR, {}), (ACS3_VECTOR, {"x-acs-signature-nonce": "a\x00b"})):
        target = vector["target"].replace("SignatureNonce=", "SignatureNonce=%00")
        with pytest.raises(ApiError) as err:
            signing.parse(request(dict(vector, target=target), **changed))
        assert (err.value.code, "SignatureNonce" in err.value.message) == ("InvalidParameter", True)


def test_unsigned_requests_are_incomplete() -> None:
    with pytest.raises(ApiError) as err:
        signing.parse(signing.Request("GET", "/", {"Action": "X"}, {}, {}, b""))
    assert err.value.code == "IncompleteSignature"


def test_timestamps_more_than_15_minutes_off_are_expired() -> None:
    claim = signing.parse(request(ACS3_VECTOR))
    signing.check_fresh(claim, SIGNED_AT + timedelta(minutes=15))
    signing.check_fresh(claim, SIGNED_AT - timedelta(minutes=15))
    for off in (timedelta(minutes=15, seconds=1), -timedelta(minutes=15, seconds=1)):
        with pytest.raises(ApiError) as err:
            signing.check_fresh(claim, SIGNED_AT + off)
        assert err.value.code == "InvalidTimeStamp.Expired"


def test_a_parameter_given_twice_is_refused() -> None:
    with pytest.raises(ApiError) as err:
        parse_params("DomainName=a.example&DomainName=b.example", "query")
    assert err.value.code == "InvalidParameter" and "DomainName" in err.value.message


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_percent_encoding_is_the_sdks_quote(text: str) -> None:
    assert signing.percent(text) == quote(text, safe="~")


@given(st.dictionaries(st.text(min_size=1), st.text(alphabet=st.characters(blacklist_categories=("Cs",)))))
def test_the_canonical_query_is_escaped_as_the_sdk_does(params: dict[str, str]) -> None:
    canonical = "&".join(f"{signing.percent(k)}={signing.percent(v)}" for k, v in sorted(params.items()))
    assert signing._percent_encoded(canonical) == quote(canonical, safe="~")


@given(
    st.dictionaries(
        st.one_of(st.text(min_size=1), st.sampled_from(["A", "A1", "Sign", "Sign1", "a b"])),
        st.one_of(st.text(), st.text(alphabet="ab:/+= \x00\x01~%&")),
    )
)
def test_the_string_to_sign_escapes_the_canonical_query_twice(params: dict[str, str]) -> None:
    """The two-pass form (ASCII, separators as NUL and SOH) is the SDK's definition, also
    when a value holds a NUL, a SOH or non-ASCII text."""
    canonical = "&".join(f"{signing.percent(k)}={signing.percent(v)}" for k, v in sorted(params.items()))
    assert signing._encoded_canonical({**params, "Signature": "x"}) == quote(canonical, safe="~")


def test_a_signed_header_sent_twice_is_canonical_as_its_values_sorted_and_joined() -> None:
    """The one-value fast path and the general one agree: `accept: b` + `accept: a` signs as
    `accept:a,b`, whatever order the values came in."""
    once = request(ACS3_VECTOR, accept="a,b")
    twice = signing.Request(once.method, once.path, once.query, once.form,
                            {**once.headers, "accept": [" b", "a "]}, once.body)  # fmt: skip
    assert signing.parse(twice).string_to_sign == signing.parse(once).string_to_sign
    assert signing.parse(twice).string_to_sign != signing.parse(request(ACS3_VECTOR)).string_to_sign
