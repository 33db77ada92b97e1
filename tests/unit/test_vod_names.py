"""Accelerated domain names: what AddVodDomain accepts, and what a free certificate may cover."""

from __future__ import annotations

import pytest

from certwatch.vod.errors import ApiError
from certwatch.vod.names import covers, domain_name, free_refusal


@pytest.mark.parametrize(
    ("raw", "name"),
    [("WWW.Example.COM.", "www.example.com"), ("*.Example.com", "*.example.com"),
     ("_media.example.com", "_media.example.com"), ("bücher.example", "xn--bcher-kva.example")],
)  # fmt: skip
def test_names_are_normalised(raw: str, name: str) -> None:
    assert domain_name(raw) == name


@pytest.mark.parametrize(
    ("raw", "code"),
    [(None, "MissingDomainName"), ("", "MissingDomainName"), ("localhost", "InvalidDomainName.Malformed"),
     ("a..example.com", "InvalidDomainName.Malformed"), ("*.*.example.com", "InvalidDomainName.Malformed"),
     ("bü_cher.example", "InvalidDomainName.Malformed"), ("a b.example", "InvalidDomainName.Malformed")],
)  # fmt: skip
def test_bad_names_are_refused_with_the_clouds_codes(raw: str | None, code: str) -> None:
    with pytest.raises(ApiError) as err:
        domain_name(raw)
    assert err.value.code == code and err.value.field == "DomainName"


def test_free_certificates_refuse_wildcards_and_underscores() -> None:
    assert free_refusal("*.example.com") == "unsupport_wildcard"
    assert free_refusal("_media.example.com") == "domain_invalid"
    assert free_refusal("www.example.com") is None


def test_a_wildcard_covers_one_label() -> None:
    assert covers("*.example.com", "www.example.com") and covers("www.example.com", "www.example.com")
    assert not covers("*.example.com", "a.b.example.com") and not covers("*.example.com", "example.com")
