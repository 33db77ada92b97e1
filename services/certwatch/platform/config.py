"""Settings from environment variables, with the defaults documented in the README.

Every process reads its settings once, in its bootstrap; nothing reads the environment
at import time, so tests can point a process at their own servers.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from certwatch.platform.shredding import MasterKeyError, parse_master_key


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "postgresql://certwatch@127.0.0.1:5432/certwatch"
    nats_url: str = "nats://127.0.0.1:4222"
    grpc_host: str = "127.0.0.1"
    grpc_ports: Mapping[str, int] = field(default_factory=dict)  # service name -> port
    # service name -> the host its callers reach it at (a Kubernetes Service), if not grpc_host
    grpc_hosts: Mapping[str, str] = field(default_factory=dict)
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_format: str = "json"
    probe_interval_s: float = 300.0
    probe_jitter_s: float = 30.0
    probe_concurrency: int = 256
    probe_connect_timeout_s: float = 5.0
    probe_handshake_timeout_s: float = 5.0
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    resolve_overrides: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()
    ca_file: str | None = None
    shutdown_grace_s: float = 10.0
    stream_replicas: int = 1
    master_key: str | None = field(default=None, repr=False)
    # Old master keys after a rotation: they still open the data keys they wrapped.
    previous_master_keys: tuple[bytes, ...] = field(default=(), repr=False)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    allow_custom_webhooks: bool = False
    observation_retention_days: int = 400  # probe observations older than this are dropped
    # Alert email: no host, no email channel.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_tls: str = "starttls"  # starttls, implicit or none
    smtp_ca_file: str | None = None
    smtp_from: str = "certwatch@localhost"
    # SMS gateway for alerts: no driver, no SMS channel.
    sms_driver: str | None = None  # "twilio" or "aliyun"
    sms_url: str | None = None
    sms_account: str | None = None
    sms_token: str | None = field(default=None, repr=False)
    sms_from: str | None = None
    sms_template: str | None = None  # the gateway's fixed template (aliyun: TemplateCode)
    # The video-CDN certificate API (Alibaba Cloud's RPC style, over HTTP beside a gRPC port).
    vod_http_port: int = 8080
    vod_region: str = "cn-shanghai"
    vod_cname_suffix: str | None = None  # the CDN target an accelerated domain's CNAME must point into
    vod_rate: float = 20.0  # signed requests a second per AccessKey, per replica
    vod_burst: int = 40

    def grpc_target(self, service: str) -> str:
        """Where a caller reaches `service`: `CERTWATCH_<NAME>_HOST` (on Kubernetes its Service;
        `grpc_host` is a bind address there, 0.0.0.0), else `grpc_host`."""
        return f"{self.grpc_hosts.get(service, self.grpc_host)}:{self.grpc_ports[service]}"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def load(env: Mapping[str, str] | None = None, *, ports: Mapping[str, int] | None = None) -> Settings:
    """Read `CERTWATCH_*` variables; unknown values raise `ConfigError` naming the variable.

    `ports` are the services' default gRPC ports (the catalogue's), each overridden by its
    `CERTWATCH_<NAME>_PORT`; `CERTWATCH_<NAME>_HOST` says where callers reach it.
    """
    env = os.environ if env is None else env
    ports = {name: _int(env, f"CERTWATCH_{name.upper()}_PORT", port) for name, port in (ports or {}).items()}
    networks = []
    for cidr in _list(env, "CERTWATCH_ALLOW_NETWORKS"):
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as exc:
            raise ConfigError(f"CERTWATCH_ALLOW_NETWORKS: {cidr!r} is not a CIDR") from exc
    defaults = Settings()
    return Settings(
        database_url=env.get("CERTWATCH_DATABASE_URL", defaults.database_url),
        nats_url=env.get("CERTWATCH_NATS_URL", defaults.nats_url),
        grpc_host=env.get("CERTWATCH_GRPC_HOST", defaults.grpc_host),
        grpc_ports=ports,
        grpc_hosts={name: host for name in ports if (host := env.get(f"CERTWATCH_{name.upper()}_HOST"))},
        otlp_endpoint=env.get("CERTWATCH_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        log_level=env.get("CERTWATCH_LOG_LEVEL", defaults.log_level).upper(),
        log_format=env.get("CERTWATCH_LOG_FORMAT", defaults.log_format),
        probe_interval_s=_float(env, "CERTWATCH_PROBE_INTERVAL_S", defaults.probe_interval_s),
        probe_jitter_s=_float(env, "CERTWATCH_PROBE_JITTER_S", defaults.probe_jitter_s),
        probe_concurrency=_int(env, "CERTWATCH_PROBE_CONCURRENCY", defaults.probe_concurrency),
        probe_connect_timeout_s=_float(
            env, "CERTWATCH_PROBE_CONNECT_TIMEOUT_S", defaults.probe_connect_timeout_s
        ),
        probe_handshake_timeout_s=_float(
            env, "CERTWATCH_PROBE_HANDSHAKE_TIMEOUT_S", defaults.probe_handshake_timeout_s
        ),
        allow_networks=tuple(networks),
        # curl's HOST:PORT:ADDR[,ADDR...] entries, separated by whitespace.
        resolve_overrides=tuple(env.get("CERTWATCH_RESOLVE", "").split()),
        dns_servers=_list(env, "CERTWATCH_DNS_SERVERS"),
        ca_file=env.get("CERTWATCH_CA_FILE") or None,
        shutdown_grace_s=_float(env, "CERTWATCH_SHUTDOWN_GRACE_S", defaults.shutdown_grace_s),
        stream_replicas=_int(env, "CERTWATCH_STREAM_REPLICAS", defaults.stream_replicas),
        master_key=env.get("CERTWATCH_MASTER_KEY") or None,
        previous_master_keys=_previous_master_keys(env),
        tls_cert_file=env.get("CERTWATCH_TLS_CERT_FILE") or None,
        tls_key_file=env.get("CERTWATCH_TLS_KEY_FILE") or None,
        tls_client_ca_file=env.get("CERTWATCH_TLS_CLIENT_CA_FILE") or None,
        allow_custom_webhooks=env.get("CERTWATCH_ALLOW_CUSTOM_WEBHOOKS", "").lower() in ("1", "true", "yes"),
        observation_retention_days=_retention(env),
        smtp_host=env.get("CERTWATCH_SMTP_HOST") or None,
        smtp_port=_int(env, "CERTWATCH_SMTP_PORT", defaults.smtp_port),
        smtp_user=env.get("CERTWATCH_SMTP_USER") or None,
        smtp_password=env.get("CERTWATCH_SMTP_PASSWORD") or None,
        smtp_tls=env.get("CERTWATCH_SMTP_TLS", defaults.smtp_tls).lower(),
        smtp_ca_file=env.get("CERTWATCH_SMTP_CA_FILE") or None,
        smtp_from=env.get("CERTWATCH_SMTP_FROM", defaults.smtp_from),
        sms_driver=env.get("CERTWATCH_SMS_DRIVER") or None,
        sms_url=env.get("CERTWATCH_SMS_URL") or None,
        sms_account=env.get("CERTWATCH_SMS_ACCOUNT") or None,
        sms_token=env.get("CERTWATCH_SMS_TOKEN") or None,
        sms_from=env.get("CERTWATCH_SMS_FROM") or None,
        sms_template=env.get("CERTWATCH_SMS_TEMPLATE") or None,
        **_vod(env),
    )


def _vod(env: Mapping[str, str]) -> dict[str, Any]:
    d = Settings()
    port = _int(env, "CERTWATCH_VOD_HTTP_PORT", d.vod_http_port)
    rate = _float(env, "CERTWATCH_VOD_RATE", d.vod_rate)
    burst = _int(env, "CERTWATCH_VOD_BURST", d.vod_burst)
    if not 0 <= port <= 65535:
        raise ConfigError(f"CERTWATCH_VOD_HTTP_PORT must be a port from 0 to 65535, got {port}")
    if rate == 0 or burst < 1:
        raise ConfigError("CERTWATCH_VOD_RATE must be above 0 and CERTWATCH_VOD_BURST at least 1")
    return {
        "vod_http_port": port, "vod_rate": rate, "vod_burst": burst,
        "vod_region": env.get("CERTWATCH_VOD_REGION") or d.vod_region,
        "vod_cname_suffix": env.get("CERTWATCH_VOD_CNAME_SUFFIX", "").strip().strip(".").lower() or None,
    }  # fmt: skip


def _previous_master_keys(env: Mapping[str, str]) -> tuple[bytes, ...]:
    name = "CERTWATCH_PREVIOUS_MASTER_KEYS"
    keys = _list(env, name)
    try:
        return tuple(parse_master_key(k, f"{name} (key {i} of {len(keys)})") for i, k in enumerate(keys, 1))
    except MasterKeyError as exc:
        raise ConfigError(str(exc)) from None


def _retention(env: Mapping[str, str]) -> int:
    name = "CERTWATCH_OBSERVATION_RETENTION_DAYS"
    days = _int(env, name, Settings().observation_retention_days)
    if days < 1:
        raise ConfigError(f"{name} must be at least 1 (days), got {days}")
    return days
