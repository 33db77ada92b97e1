"""Shared end-to-end fixtures: a test PKI and stack settings that admit loopback targets."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from certwatch.platform.config import Settings
from certwatch.platform.localstack import Nats
from tests.support.pki import TestPKI


@pytest.fixture
def pki() -> Iterator[TestPKI]:
    with TestPKI() as p:
        yield p


@pytest.fixture
def settings(database_url: str, nats_server: Nats, pki: TestPKI) -> Settings:
    """Probes trust only the test PKI, may reach 127.0.0.0/8, and repeat hourly."""
    return Settings(
        database_url=database_url, nats_url=nats_server.url, log_format="text",
        allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), ca_file=pki.ca_file,
        probe_interval_s=3600, probe_jitter_s=0, probe_connect_timeout_s=2,
        probe_handshake_timeout_s=2, shutdown_grace_s=3,
    )  # fmt: skip
