"""A silent fallback is said once at start: which TLS driver probes run on, and why."""

from __future__ import annotations

import logging

import pytest

from certwatch.prober import tls_chain


def test_the_tls_driver_is_named_at_start(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with caplog.at_level(logging.INFO, logger="certwatch.prober.tls_chain"):
        monkeypatch.setattr(tls_chain, "_WHY_STDLIB", None)
        tls_chain.log_driver()
        monkeypatch.setattr(tls_chain, "_WHY_STDLIB", "cryptography's OpenSSL binding lacks SSL_new")
        tls_chain.log_driver()
    native, fallback = caplog.records
    assert native.levelno == logging.INFO and "OpenSSL" in native.getMessage()
    assert fallback.levelno == logging.WARNING
    assert "standard library's ssl (cryptography's OpenSSL binding lacks SSL_new)" in fallback.getMessage()
    assert "stapled OCSP" in fallback.getMessage()
