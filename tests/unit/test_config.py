"""Settings come from CERTWATCH_* variables; a bad value names its variable."""

from __future__ import annotations

import ipaddress

import pytest

from certwatch.platform.config import SERVICE_PORTS, ConfigError, Settings, load
from certwatch.prober.settings import parse_resolve


def test_defaults_without_environment() -> None:
    settings = load({})
    assert settings == Settings()
    assert settings.grpc_target("prober") == f"127.0.0.1:{SERVICE_PORTS['prober']}"
    assert settings.allow_networks == () and settings.master_key is None


def test_values_are_read_and_typed() -> None:
    settings = load({
        "CERTWATCH_DATABASE_URL": "postgresql://x@db/certwatch", "CERTWATCH_INVENTORY_PORT": "6000",
        "CERTWATCH_ALLOW_NETWORKS": "10.0.0.0/8, 127.0.0.1", "CERTWATCH_PROBE_INTERVAL_S": "60",
        "CERTWATCH_RESOLVE": "a.test:443:127.0.0.2", "CERTWATCH_LOG_LEVEL": "debug",
    })  # fmt: skip
    assert settings.database_url == "postgresql://x@db/certwatch"
    assert settings.grpc_ports["inventory"] == 6000 and settings.grpc_ports["vod"] == SERVICE_PORTS["vod"]
    assert settings.allow_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
    )
    assert settings.probe_interval_s == 60.0 and settings.log_level == "DEBUG"
    assert parse_resolve(settings.resolve_overrides) == {("a.test", 443): ["127.0.0.2"]}


@pytest.mark.parametrize(
    ("name", "value"),
    [("CERTWATCH_PROBE_INTERVAL_S", "soon"), ("CERTWATCH_PROBE_INTERVAL_S", "-1"),
     ("CERTWATCH_PROBER_PORT", "x"), ("CERTWATCH_ALLOW_NETWORKS", "10.0.0.0/33")],
)  # fmt: skip
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load({name: value})


@pytest.mark.parametrize("entry", ["a.test", "a.test:x:1.2.3.4", "a.test:443:", ":443:1.2.3.4"])
def test_bad_resolve_entries_are_refused(entry: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT:ADDRESS"):
        parse_resolve([entry])


def test_dns_servers_are_parsed_or_refused_by_name() -> None:
    from certwatch.prober.settings import probe_options

    assert probe_options(load({"CERTWATCH_DNS_SERVERS": "127.0.0.53, [::1]:5353"})).nameservers == (
        ("127.0.0.53", 53),
        ("::1", 5353),
    )
    with pytest.raises(ConfigError, match="CERTWATCH_DNS_SERVERS"):
        probe_options(load({"CERTWATCH_DNS_SERVERS": "dns.example"}))
