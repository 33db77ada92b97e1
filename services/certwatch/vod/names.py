"""Accelerated domain names: what AddVodDomain accepts, and what a free certificate can cover.

Pure. A VOD domain is a DNS name (`rules.targets` rules), optionally a wildcard (`*.` then a
name), and may hold underscores (DNS allows them, and CDN domains such as `_media.example.com`
exist); a certificate authority cannot issue for an underscore or a wildcard on the free
(HTTP-validated) path, which is what `free_refusal` says, in the seed's Status words.
"""

from __future__ import annotations

from functools import lru_cache

from certwatch.rules.targets import ValidationError, normalize_hostname
from certwatch.vod.errors import ApiError

WILDCARD = "*."


@lru_cache(maxsize=4096)  # a client asks for the same few names again and again: IDNA checks cost ~10 us
def domain_name(raw: str | None) -> str:
    """The normalised DomainName; MissingDomainName / InvalidDomainName.Malformed otherwise."""
    if not raw:
        raise ApiError("MissingDomainName", "The input parameter DomainName that is mandatory for processing this request is not supplied.")  # fmt: skip
    wildcard = raw.startswith(WILDCARD)
    rest = raw[len(WILDCARD) :] if wildcard else raw
    # An ASCII name keeps its underscores: the DNS rules are checked with them as letters.
    underscored = "_" in rest and rest.isascii()
    try:
        name = normalize_hostname(rest.replace("_", "u") if underscored else rest, field="DomainName")
    except ValidationError as exc:
        raise ApiError("InvalidDomainName.Malformed", f"The specified DomainName {raw!r} is malformed: {exc.message}.") from None  # fmt: skip
    if underscored:
        name = rest.lower().rstrip(".")
    return WILDCARD + name if wildcard else name


def free_refusal(name: str) -> str | None:
    """The free-certificate Status that refuses `name` outright, or None when one can be applied for."""
    if name.startswith(WILDCARD):
        return "unsupport_wildcard"
    if "_" in name:
        return "domain_invalid"
    return None


def covers(pattern: str, host: str) -> bool:
    """Whether a certificate name (`*.example.com` or exact) covers `host` (RFC 6125, one label)."""
    if pattern.startswith(WILDCARD):
        return (
            host.count(".") == pattern.count(".") and host.endswith(pattern[1:]) and not host.startswith("*")
        )
    return pattern == host
