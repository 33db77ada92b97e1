"""Settings come from CERTWATCH_* variables; a bad value names its variable."""

from __future__ import annotations

import ipaddress

import pytest

from certwatch.platform.config import ConfigError, Settings, load
from certwatch.platform.shredding import new_master_key, parse_master_key
from certwatch.prober.settings import parse_resolve
from certwatch.services import PORTS


def test_defaults_without_environment() -> None:
    settings = load({}, ports=PORTS)
    assert settings == Settings(grpc_ports=PORTS)
    assert settings.grpc_target("prober") == f"127.0.0.1:{PORTS['prober']}"
    assert settings.allow_networks == () and settings.master_key is None


def test_callers_reach_a_service_at_its_host_variable_else_the_bind_host() -> None:
    settings = load({"CERTWATCH_GRPC_HOST": "0.0.0.0", "CERTWATCH_INVENTORY_HOST": "cw-certwatch-inventory"},
                    ports=PORTS)  # fmt: skip
    assert settings.grpc_target("inventory") == f"cw-certwatch-inventory:{PORTS['inventory']}"
    assert settings.grpc_target("prober") == f"0.0.0.0:{PORTS['prober']}"


def test_values_are_read_and_typed() -> None:
    settings = load({
        "CERTWATCH_DATABASE_URL": "postgresql://x@db/certwatch", "CERTWATCH_INVENTORY_PORT": "6000",
        "CERTWATCH_ALLOW_NETWORKS": "10.0.0.0/8, 127.0.0.1", "CERTWATCH_PROBE_INTERVAL_S": "60",
        "CERTWATCH_RESOLVE": "a.test:443:127.0.0.2", "CERTWATCH_LOG_LEVEL": "debug",
    }, ports=PORTS)  # fmt: skip
    assert settings.database_url == "postgresql://x@db/certwatch"
    assert settings.grpc_ports["inventory"] == 6000 and settings.grpc_ports["vod"] == PORTS["vod"]
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
        load({name: value}, ports=PORTS)


def test_previous_master_keys_are_read_for_every_service() -> None:
    old, older = new_master_key(), new_master_key()
    settings = load({"CERTWATCH_PREVIOUS_MASTER_KEYS": f"{old}, {older}"}, ports=PORTS)
    assert settings.previous_master_keys == (parse_master_key(old), parse_master_key(older))
    assert old not in repr(settings)


@pytest.mark.parametrize("value", ["short", "not base64!", f"{new_master_key()},c2hvcnQ="])
def test_a_bad_previous_master_key_is_refused_naming_the_variable_never_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match="CERTWATCH_PREVIOUS_MASTER_KEYS") as err:
        load({"CERTWATCH_PREVIOUS_MASTER_KEYS": value}, ports=PORTS)
    assert "CERTWATCH_MASTER_KEY " not in str(err.value) and value.split(",")[-1] not in str(err.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a.test:443:127.0.0.2", {("a.test", 443): ["127.0.0.2"]}),
        # curl's full form: several addresses, IPv6 in brackets (or bare after the port).
        ("a.test:443:127.0.0.2,[2001:db8::1],127.0.0.3",
         {("a.test", 443): ["127.0.0.2", "2001:db8::1", "127.0.0.3"]}),
        ("A.Test.:8443:::1", {("a.test", 8443): ["::1"]}),
        ("a.test:443:[::1],2001:db8::2", {("a.test", 443): ["::1", "2001:db8::2"]}),
        # The older comma-separated list of single-address entries still reads as entries.
        ("a.test:443:127.0.0.2,b.test:443:[::1],127.0.0.4",
         {("a.test", 443): ["127.0.0.2"], ("b.test", 443): ["::1", "127.0.0.4"]}),
        ("bücher.example:443:127.0.0.2", {("xn--bcher-kva.example", 443): ["127.0.0.2"]}),
    ],
)  # fmt: skip
def test_resolve_entries_read_as_curl_reads_them(
    value: str, expected: dict[tuple[str, int], list[str]]
) -> None:
    assert parse_resolve([value]) == expected


def test_resolve_variable_separates_entries_by_whitespace() -> None:
    settings = load(
        {
            "CERTWATCH_RESOLVE": " a.test:443:127.0.0.2,127.0.0.3\n b.test:80:[::1]  a.test:443:127.0.0.2, c.test:1:10.0.0.1"
        }
    )
    assert parse_resolve(settings.resolve_overrides) == {
        ("a.test", 443): ["127.0.0.2", "127.0.0.3"], ("b.test", 80): ["::1"], ("c.test", 1): ["10.0.0.1"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "rule"),
    [("a.test", "expected HOST:PORT:ADDRESS"), ("a.test:443:", "expected HOST:PORT:ADDRESS"),
     (":443:1.2.3.4", "expected HOST:PORT:ADDRESS"), ("a.test:x:1.2.3.4", "PORT must be a number"),
     ("a.test:0:1.2.3.4", "PORT must be a number"), ("a.test::1.2.3.4", "PORT must be a number"), ("a.test:70000:1.2.3.4", "PORT must be a number"),
     ("a.test:443:1.2.3.4,nope", "'nope' is not an IP address"),
     ("a.test:443:[1.2.3.4]", "only IPv6 addresses go in brackets"),
     ("a.test:443:[::1", "is not an IP address"), ("-a.test:443:1.2.3.4", "HOST must be a host name"),
     ("[::1]:443:1.2.3.4", "HOST must be a host name"), ("*:443:1.2.3.4", "HOST must be a host name"),
     ("localhost:443:127.0.0.1", "single label")],  # a name no monitored domain can have
)  # fmt: skip
def test_bad_resolve_entries_are_refused_naming_the_rule(entry: str, rule: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_resolve([entry])
    message = str(raised.value)
    assert rule in message and "HOST:PORT:ADDRESS[,ADDRESS...]" in message and "\n" not in message


def test_dns_servers_are_parsed_or_refused_by_name() -> None:
    from certwatch.prober.settings import probe_options

    assert probe_options(load({"CERTWATCH_DNS_SERVERS": "127.0.0.53, [::1]:5353"})).nameservers == (
        ("127.0.0.53", 53),
        ("::1", 5353),
    )
    with pytest.raises(ConfigError, match="CERTWATCH_DNS_SERVERS"):
        probe_options(load({"CERTWATCH_DNS_SERVERS": "dns.example"}))


def test_observation_retention_defaults_to_400_days_and_refuses_less_than_one() -> None:
    assert load({}).observation_retention_days == 400
    assert load({"CERTWATCH_OBSERVATION_RETENTION_DAYS": "30"}).observation_retention_days == 30
    with pytest.raises(ConfigError, match="CERTWATCH_OBSERVATION_RETENTION_DAYS must be at least 1"):
        load({"CERTWATCH_OBSERVATION_RETENTION_DAYS": "0"})
