"""The trust store: Mozilla's (certifi) by default, the system's on request, or a given file."""

from __future__ import annotations

import certifi

from certwatch.platform.trust_bundle import SYSTEM, system_bundle
from certwatch.prober.trust import load_anchors
from tests.support.pki import TestPKI


def test_default_is_certifi_and_system_is_the_os_bundle() -> None:
    assert load_anchors().source == certifi.where()
    system = load_anchors(SYSTEM)
    assert system.source == system_bundle() != certifi.where()
    assert len(system.by_subject) > 10


def test_a_ca_file_trusts_only_its_roots() -> None:
    with TestPKI() as pki:
        anchors = load_anchors(pki.ca_file)
        assert anchors.is_anchor(pki.root.cert) and not anchors.is_anchor(pki.intermediate.cert)
        assert list(anchors.by_subject) == [pki.root.cert.subject]
