"""`ProbeObserved` is a typed contract: the classifier decodes a message body straight into
typed structs, resolves the chains from the certificate store, and gets the prober's
`ProbeResult` back; messages the prober published before the typed result still decode."""

from __future__ import annotations

import uuid
from dataclasses import replace

import msgspec
import orjson
import pytest

from certwatch.contracts.probe import ObservedResult, ProbeObserved
from certwatch.rules.facts import AtsResult, CertFacts, ChainProblem, ProbeResult, TrustedRoot
from tests.support.probe_results import NOW, cert, intermediate, refused, result, served


def _rich() -> ProbeResult:
    """Every optional field of an endpoint set, so a field lost on the way shows."""
    leaf, mid = cert(days=90), intermediate()
    probe = result(served("192.0.2.1", leaf, mid), refused("192.0.2.2"))
    endpoint = replace(
        probe.endpoints[0], problems=(ChainProblem("expired", "gone", 1),), warnings=(ChainProblem("wrong_order", "x"),),
        path=(0, 1), anchor=TrustedRoot("CN=Root", NOW, NOW), ats=AtsResult(False, ("tls",)), ocsp_status="good",
        ocsp_detail="fresh", earliest_expiry=NOW, earliest_expiry_index=1, verify_error="e", forward_secret=True,
    )  # fmt: skip
    return replace(probe, endpoints=(endpoint, probe.endpoints[1]), dns_ms=1.5)


def _certs(probe: ProbeResult) -> dict[str, CertFacts]:
    return {c.sha256: c for e in probe.endpoints for c in e.chain}


def _observed(body: ObservedResult) -> ProbeObserved:
    return ProbeObserved(
        observation_id=str(uuid.uuid4()), domain_id=str(uuid.uuid4()), account_id="a", host="h.test", port=443,
        generation=1, first_check=False, result=body,
    )  # fmt: skip


def test_a_published_probe_decodes_to_the_probe_given_its_certificates() -> None:
    probe = _rich()
    message = _observed(ObservedResult.of(probe))
    decoded = ProbeObserved.decode(message.encode())
    assert decoded == message and decoded.v == ProbeObserved.VERSION == 2
    assert decoded.result.fingerprints == set(_certs(probe))
    assert decoded.result.facts(_certs(probe)) == probe
    assert b'"chain"' not in message.encode()  # certificates travel by reference only


def _v1_result(probe: ProbeResult) -> dict[str, object]:
    """Version 1's `result`: `ProbeResult.to_dict()`, each chain emptied, its fingerprints in `chain_ref`."""
    data = probe.to_dict()
    data["endpoints"] = [
        {**e, "chain": [], "chain_ref": [c["sha256"] for c in e["chain"]]} if e["chain"] else e
        for e in data["endpoints"]
    ]
    return data


def test_a_version_1_message_decodes_as_the_current_version() -> None:
    probe = _rich()
    v1 = {
        **msgspec.to_builtins(_observed(ObservedResult.of(probe))),
        "result": _v1_result(probe),
    }
    del v1["v"]
    decoded = ProbeObserved.decode(orjson.dumps(v1))
    assert decoded.result == ObservedResult.of(probe)
    assert decoded.result.facts(_certs(probe)) == probe


def test_an_unknown_certificate_resolves_to_nothing_and_a_bad_body_names_its_field() -> None:
    probe = _rich()
    certs = _certs(probe)
    certs.pop(next(iter(certs)))
    assert ObservedResult.of(probe).facts(certs) is None
    body = orjson.loads(_observed(ObservedResult.of(probe)).encode())
    body["result"]["endpoints"][0]["connect_ms"] = "fast"
    with pytest.raises(msgspec.ValidationError, match=r"\$\.result\.endpoints\[0\]\.connect_ms"):
        ProbeObserved.decode(orjson.dumps(body))
