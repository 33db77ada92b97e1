"""Read the certificate chain the server presented from a live TLS connection.

The stdlib exposes the unverified peer chain publicly only from Python 3.13
(``SSLObject.get_unverified_chain()`` returning DER bytes); 3.10-3.12 have the same call
on the private ``_sslobj`` returning certificate objects. This is the one place that knows.
"""

from __future__ import annotations

import _ssl
import ssl
from typing import Any


def presented_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """DER encodings of every certificate the peer sent, leaf first (may be empty)."""
    public = getattr(ssl_object, "get_unverified_chain", None)
    if public is not None:
        return [bytes(der) for der in public() or ()]
    private: Any = getattr(ssl_object, "_sslobj", None)
    certs = private.get_unverified_chain() if private is not None else None
    if certs:
        return [cert.public_bytes(_ssl.ENCODING_DER) for cert in certs]
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []
