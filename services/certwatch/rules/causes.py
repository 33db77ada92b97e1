"""The status and cause vocabulary of domain monitoring, with the texts users see.

Descriptions and recommended actions follow the Public Domain Name Monitoring product page
(shared/seeds/domain-monitoring.txt), so an alert reads the same as the reference product,
except where the seed's advice does not help someone running their own servers: a chain
failure says what to serve rather than "Contact your account manager", and a finding's own
action (``classify.recommended_action``) names the certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    SECURE = "SECURE"
    ABNORMAL = "ABNORMAL"
    ENABLE_FAILED = "ENABLE_FAILED"
    ENABLING = "ENABLING"  # set by the caller while the first check runs; never classified


class Cause(StrEnum):
    # ABNORMAL
    NETWORK_CONNECTION_FAILURE = "NETWORK_CONNECTION_FAILURE"
    NO_SSL_CERTIFICATE = "NO_SSL_CERTIFICATE"
    CERTIFICATE_MISMATCH = "CERTIFICATE_MISMATCH"
    CHAIN_VALIDATION_FAILED = "CHAIN_VALIDATION_FAILED"
    ABOUT_TO_EXPIRE = "ABOUT_TO_EXPIRE"
    EXPIRED = "EXPIRED"
    # ENABLE_FAILED
    CONNECTION_FAILURE = "CONNECTION_FAILURE"
    INVALID_IP = "INVALID_IP"
    INVALID_DOMAIN = "INVALID_DOMAIN"
    INVALID_PORT = "INVALID_PORT"


@dataclass(frozen=True, slots=True)
class CauseInfo:
    status: Status
    title: str
    description: str
    action: str


_ABN = Status.ABNORMAL
_ENF = Status.ENABLE_FAILED

CAUSE_INFO: Mapping[Cause, CauseInfo] = MappingProxyType(
    {
        Cause.NETWORK_CONNECTION_FAILURE: CauseInfo(
            _ABN,
            "Network connection failure",
            "The network connection timed out.",
            "Check your server for network exceptions and resolve any issues found.",
        ),
        Cause.NO_SSL_CERTIFICATE: CauseInfo(
            _ABN,
            "No SSL certificate is configured",
            "The domain name has no SSL certificate configured and does not support HTTPS.",
            "Purchase and configure an SSL certificate for the domain name.",
        ),
        Cause.CERTIFICATE_MISMATCH: CauseInfo(
            _ABN,
            "Certificate mismatch",
            "The domain name does not match the domain name that is bound to the certificate.",
            "Revoke the current certificate and then apply for or purchase a new one.",
        ),
        Cause.CHAIN_VALIDATION_FAILED: CauseInfo(
            _ABN,
            "Certificate chain validation failed",
            "An issue exists in the SSL certificate chain. For example, the certificate chain"
            " is incomplete or untrusted.",
            "Serve the full certificate chain from a publicly trusted CA: the certificate first,"
            " then each intermediate certificate up to the root (each finding names the"
            " certificate that is missing, expired or untrusted).",
        ),
        Cause.ABOUT_TO_EXPIRE: CauseInfo(
            _ABN,
            "Certificate is about to expire",
            "The domain's certificate is about to expire. The remaining validity period is"
            " less than 30 calendar days.",
            "Renew the certificate promptly to prevent disruptions.",
        ),
        Cause.EXPIRED: CauseInfo(
            _ABN,
            "Certificate has expired",
            "The certificate that is used by the domain name has expired.",
            "Purchase and configure a new SSL certificate for the domain name.",
        ),
        Cause.CONNECTION_FAILURE: CauseInfo(
            _ENF,
            "Connection failure",
            "Certificate Management Service cannot connect to the domain name.",
            "Check your server for network issues and resolve any exceptions found.",
        ),
        Cause.INVALID_IP: CauseInfo(
            _ENF,
            "Invalid IP address",
            "Certificate Management Service cannot resolve the IP address for the domain name's server.",
            "Check the DNS resolution of the domain name and resolve any exceptions found.",
        ),
        Cause.INVALID_DOMAIN: CauseInfo(
            _ENF,
            "Invalid domain name",
            "The domain name cannot be accessed over the public network.",
            "Verify that the domain name is correct and publicly accessible, then edit it and retry.",
        ),
        Cause.INVALID_PORT: CauseInfo(
            _ENF,
            "Invalid port",
            "The specified port does not provide HTTPS services.",
            "Verify that the port provides HTTPS services, then edit it and retry.",
        ),
    }
)
