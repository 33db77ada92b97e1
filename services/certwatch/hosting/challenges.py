"""Making challenges answerable: http-01 by the replicas' responders (shared through
PostgreSQL), dns-01 by a DNS provider. Called from ACME worker threads; a failure to make one
answerable is the challenge's, before the CA is asked to validate it."""

from __future__ import annotations

import logging

import dns.exception

from certwatch.contracts.hosting import FailureKind, Validation
from certwatch.hosting.acme_client import AcmeFailure
from certwatch.hosting.dns_providers import DnsError, DnsProvider
from certwatch.hosting.http01 import Http01Responder, ShareError

log = logging.getLogger(__name__)


class Solvers:
    def __init__(self, responder: Http01Responder | None, dns_provider: DnsProvider | None = None) -> None:
        self._responder = responder
        self._dns = dns_provider

    def present(self, method: Validation, domain: str, key: str, value: str) -> None:
        """`key`: the http-01 token or the dns-01 record name; `value`: what the CA expects there."""
        if method == Validation.HTTP_01:
            if self._responder is None:
                raise AcmeFailure(FailureKind.CHALLENGE_FAILED, "no http-01 responder is configured")
            try:
                self._responder.put(key, value)
            except ShareError as exc:
                raise AcmeFailure(FailureKind.CHALLENGE_FAILED, f"the http-01 answer for {domain} could not"
                                  f" be shared with the other replicas: {exc}") from exc  # fmt: skip
            return
        if self._dns is None:
            raise AcmeFailure(FailureKind.CHALLENGE_FAILED, "no DNS provider is configured for dns-01"
                              " (CERTWATCH_ACME_DNS_PROVIDER)")  # fmt: skip
        try:
            self._dns.set_txt(key, value)
        except (DnsError, dns.exception.DNSException, OSError) as exc:
            raise AcmeFailure(FailureKind.CHALLENGE_FAILED, f"DNS update for {domain} failed: {exc}") from exc

    def cleanup(self, method: Validation, domain: str, key: str, value: str) -> None:
        if method == Validation.HTTP_01:
            if self._responder is not None:
                try:
                    self._responder.drop(key)
                except ShareError as exc:  # it expires (ANSWER_TTL): say so, go on
                    log.warning("hosting: could not remove the http-01 answer for %s: %s", domain, exc)
        elif self._dns is not None:
            try:
                self._dns.clear_txt(key, value)
            except (DnsError, dns.exception.DNSException, OSError) as exc:
                # A stale TXT record does no harm (the next order's value differs): say so, go on.
                log.warning("hosting: could not remove the TXT record %s: %s", key, exc)
