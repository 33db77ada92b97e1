"""CERTWATCH_ACME_* settings: defaults, and refusals that name the variable."""

from __future__ import annotations

import pytest

from certwatch.hosting.dns_providers import Tsig
from certwatch.hosting.settings import AcmeSettings
from certwatch.platform.config import ConfigError


def test_defaults_and_values() -> None:
    assert AcmeSettings.from_env({}) == AcmeSettings()
    s = AcmeSettings.from_env({
        "CERTWATCH_ACME_DIRECTORY": "https://ca.example/dir", "CERTWATCH_ACME_HTTP01_ADDR": ":80",
        "CERTWATCH_ACME_DNS_PROVIDER": "rfc2136",
        "CERTWATCH_ACME_RFC2136_SERVER": "127.0.0.1:53", "CERTWATCH_ACME_RFC2136_TSIG": "k.:c2VjcmV0",
        "CERTWATCH_EXPIRY_GAUGE_DOMAINS": "20",
    })  # fmt: skip
    assert (s.directory, s.http01_host, s.http01_port) == ("https://ca.example/dir", "0.0.0.0", 80)
    assert s.expiry_gauge_domains == 20
    assert Tsig.parse(s.rfc2136_tsig or "") == Tsig("k.", "c2VjcmV0")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CERTWATCH_ACME_HTTP01_ADDR": "localhost"}, "CERTWATCH_ACME_HTTP01_ADDR"),
        ({"CERTWATCH_HOSTING_POLL_S": "soon"}, "CERTWATCH_HOSTING_POLL_S"),
        ({"CERTWATCH_EXPIRY_GAUGE_DOMAINS": "-1"}, "CERTWATCH_EXPIRY_GAUGE_DOMAINS"),
        ({"CERTWATCH_ACME_DNS_PROVIDER": "route53"}, "CERTWATCH_ACME_DNS_PROVIDER"),
        ({"CERTWATCH_ACME_DNS_PROVIDER": "rfc2136"}, "CERTWATCH_ACME_RFC2136_SERVER"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        AcmeSettings.from_env(env)


def test_a_tsig_needs_name_and_base64_secret() -> None:
    with pytest.raises(ConfigError, match="CERTWATCH_ACME_RFC2136_TSIG"):
        Tsig.parse("just-a-name")
    with pytest.raises(ConfigError, match="base64"):
        Tsig.parse("k.:not base64!")
