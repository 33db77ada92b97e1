"""dns-01 through a small provider interface: put and remove the `_acme-challenge` TXT records.

`Rfc2136` drives any DNS server that takes dynamic updates (BIND, Knot, PowerDNS, ...),
signed with TSIG when a key is configured. Blocking (dnspython): called from the ACME
worker thread. The zone of a name is found by asking the server for the SOA of each
parent in turn.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from certwatch.platform.config import ConfigError

TTL = 60
TIMEOUT_S = 5.0


class DnsError(Exception):
    """The DNS server refused or did not answer an update."""


class DnsProvider(Protocol):
    def set_txt(self, name: str, value: str) -> None: ...
    def clear_txt(self, name: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Tsig:
    name: str
    secret: str  # base64
    algorithm: str = "hmac-sha256"

    @classmethod
    def parse(cls, text: str) -> Tsig:
        """NAME:BASE64SECRET[:ALGORITHM], as CERTWATCH_ACME_RFC2136_TSIG gives it."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError("CERTWATCH_ACME_RFC2136_TSIG must be NAME:BASE64SECRET[:ALGORITHM]")
        try:
            base64.b64decode(parts[1], validate=True)
        except ValueError:
            raise ConfigError("CERTWATCH_ACME_RFC2136_TSIG: the secret must be base64") from None
        return cls(*parts)


class Rfc2136:
    def __init__(self, host: str, port: int, tsig: Tsig | None = None) -> None:
        self._host, self._port = host, port
        self._keyring = None
        self._keyname = None
        self._algorithm = dns.tsig.HMAC_SHA256
        if tsig is not None:
            self._keyring = dns.tsigkeyring.from_text({tsig.name: tsig.secret})
            self._keyname = dns.name.from_text(tsig.name)
            self._algorithm = dns.name.from_text(tsig.algorithm)

    def _zone(self, name: dns.name.Name) -> dns.name.Name:
        candidate = name
        while candidate != dns.name.root:
            query = dns.message.make_query(candidate, dns.rdatatype.SOA)
            answer = dns.query.udp(query, self._host, port=self._port, timeout=TIMEOUT_S)
            if any(r.rdtype == dns.rdatatype.SOA and r.name == candidate for r in answer.answer):
                return candidate
            candidate = candidate.parent()
        raise DnsError(f"no zone on {self._host}:{self._port} holds {name}")

    def _send(self, name: str, value: str, *, add: bool) -> None:
        fqdn = dns.name.from_text(name)
        zone = self._zone(fqdn)
        update = dns.update.UpdateMessage(zone, keyring=self._keyring, keyname=self._keyname,
                                          keyalgorithm=self._algorithm)  # fmt: skip
        quoted = '"' + value.replace('"', '\\"') + '"'
        if add:
            update.add(fqdn, TTL, dns.rdatatype.TXT, quoted)
        else:
            update.delete(fqdn, dns.rdatatype.TXT, quoted)
        response = dns.query.tcp(update, self._host, port=self._port, timeout=TIMEOUT_S)
        if response.rcode() != dns.rcode.NOERROR:
            raise DnsError(f"update of {name} refused: {dns.rcode.to_text(response.rcode())}")

    def set_txt(self, name: str, value: str) -> None:
        self._send(name, value, add=True)

    def clear_txt(self, name: str, value: str) -> None:
        self._send(name, value, add=False)
