"""The test SMTP server stops cleanly with a client still connected (as a notifier killed just
before the end of a test leaves it): no transport is left to warn when collected."""

from __future__ import annotations

import gc
import smtplib
import ssl

from tests.support.pki import TestPKI
from tests.support.smtp_server import Mailbox, smtp_server


def test_the_server_stops_with_a_client_still_connected(pki: TestPKI) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, pki) as port:
        client = smtplib.SMTP("127.0.0.1", port, timeout=5)
        client.starttls(context=ssl.create_default_context(cafile=str(pki.ca_file)))
        client.login(mailbox.user, mailbox.password)
    assert client.sock is not None
    client.sock.close()
    gc.collect()  # an unclosed server-side transport would warn here, an error under pytest's filter
    assert mailbox.logins == 1
