"""A hosted instance issued through pebble: application, one order, HOSTED, key sealed."""

from __future__ import annotations

import uuid

from certwatch.contracts import hosting as hc
from certwatch.platform.eventlog import EventLog
from tests.support.hosting import Hosting, verify_chain
from tests.support.pebble import Pebble


def _name() -> str:
    return f"h{uuid.uuid4().hex[:10]}.example.com"


async def test_first_application_is_issued_and_hosted(h: Hosting, ca: Pebble, event_log: EventLog) -> None:
    _sub, instances = await h.use_cases.subscribe(h.account_id, 3, "test")
    assert [i.state for i in instances] == [hc.InstanceState.PENDING_APPLICATION, hc.InstanceState.NOT_ACTIVATED,
                                            hc.InstanceState.NOT_ACTIVATED]  # fmt: skip
    assert instances[0].next_instance_id == instances[1].instance_id
    assert instances[2].previous_instance_id == instances[1].instance_id
    names = [_name(), _name()]
    await h.use_cases.apply(h.account_id, instances[0].instance_id, names, "ec256", "Example Co",
                            "ops@example.com", "http-01", "test")  # fmt: skip
    await h.settle()
    view = await h.use_cases.lifecycle(h.account_id, instances[0].instance_id)
    assert view.instance.state == hc.InstanceState.HOSTED, view.last_failure
    assert [p.state for p in view.instance.history] == [
        hc.InstanceState.PENDING_APPLICATION,
        hc.InstanceState.APPLYING,
        hc.InstanceState.HOSTED,
    ]
    assert view.instance.orders_placed == 1
    (cert,) = await h.use_cases.certificates(h.account_id)
    assert sorted(cert.names) == sorted(names)
    _row, pem = await h.use_cases.download(h.account_id, cert.id, "pem", "")
    text = pem.decode()
    assert "PRIVATE KEY" in text
    leaf_pem = text.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    chain_pem = text[len(leaf_pem) : text.index("-----BEGIN PRIVATE KEY")]
    verify_chain(leaf_pem, chain_pem, ca.root_pem)
    # The key never appears in clear in the log.
    key_body = text[text.index("-----BEGIN PRIVATE KEY") :].splitlines()[1]
    events = await event_log.read_stream(hc.stream_id(instances[0].instance_id))
    assert all(key_body not in str(e.data) for e in events)
