"""The hosting orchestrator's settings, from CERTWATCH_ACME_* and a few CERTWATCH_* of hosting's
own (the platform config does not carry them).

Without CERTWATCH_ACME_DIRECTORY the service still serves its API and records applications,
but places no order (logged at start): there is no safe default CA to send them to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from certwatch.platform.config import ConfigError


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    directory: str | None = None
    ca_file: str | None = None
    http01_host: str = "127.0.0.1"
    http01_port: int = 8402  # route port 80 of the hosted names here
    eab_kid: str | None = None
    eab_hmac_key: str | None = None
    poll_s: float = 5.0
    dns_provider: str | None = None  # "rfc2136"
    rfc2136_server: str | None = None  # HOST:PORT of the primary that takes updates
    rfc2136_tsig: str | None = None  # NAME:BASE64SECRET[:ALGORITHM]
    expiry_gauge_domains: int = 100  # series of the per-domain days-to-expiry gauge (the soonest)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AcmeSettings:
        addr = env.get("CERTWATCH_ACME_HTTP01_ADDR", "127.0.0.1:8402")
        host, _, port = addr.rpartition(":")
        try:
            http01_port = int(port)
            poll_s = float(env.get("CERTWATCH_HOSTING_POLL_S", "5"))
        except ValueError:
            raise ConfigError(
                f"CERTWATCH_ACME_HTTP01_ADDR must be HOST:PORT (got {addr!r}) and CERTWATCH_HOSTING_POLL_S a number"
            ) from None
        gauge_domains = env.get("CERTWATCH_EXPIRY_GAUGE_DOMAINS", "100")
        if not gauge_domains.isdigit():
            raise ConfigError(
                f"CERTWATCH_EXPIRY_GAUGE_DOMAINS must be a count (0: none), got {gauge_domains!r}"
            )
        provider = env.get("CERTWATCH_ACME_DNS_PROVIDER") or None
        if provider not in (None, "rfc2136"):
            raise ConfigError(f"CERTWATCH_ACME_DNS_PROVIDER must be rfc2136, got {provider!r}")
        if provider and not env.get("CERTWATCH_ACME_RFC2136_SERVER"):
            raise ConfigError(
                "CERTWATCH_ACME_RFC2136_SERVER (HOST:PORT) is required with the rfc2136 provider"
            )
        return cls(
            directory=env.get("CERTWATCH_ACME_DIRECTORY") or None,
            ca_file=env.get("CERTWATCH_ACME_CA_FILE") or None,
            http01_host=host.strip("[]") or "0.0.0.0",
            http01_port=http01_port,
            eab_kid=env.get("CERTWATCH_ACME_EAB_KID") or None,
            eab_hmac_key=env.get("CERTWATCH_ACME_EAB_HMAC_KEY") or None,
            poll_s=poll_s,
            dns_provider=provider,
            rfc2136_server=env.get("CERTWATCH_ACME_RFC2136_SERVER") or None,
            rfc2136_tsig=env.get("CERTWATCH_ACME_RFC2136_TSIG") or None,
            expiry_gauge_domains=int(gauge_domains),
        )
