"""Request signatures of Alibaba Cloud's OpenAPI, verified exactly as the SDKs compute them.

Pure: no I/O, no clock (the caller passes `now`). Two schemes:

- ACS3-HMAC-SHA256, in the `Authorization` header (the current SDK's default). The signed
  header list is the one `SignedHeaders` names (the SDK signs every header it sets,
  `user-agent` included); every `x-acs-*` header and `host` must be among them, so none
  can be changed unsigned. The query is decoded and re-encoded with `quote(v, safe="~")`
  (`%20` where the wire has `+`). The payload hash is `x-acs-content-sha256`, which must be
  the SHA-256 of the body actually received.
- RPC signature v1 (HMAC-SHA1, `Signature` parameter: `signature_algorithm="v2"` and the
  legacy `aliyun-python-sdk-core`): every parameter of the query and the form body but
  `Signature`, sorted, key `secret + "&"`.

`parse` reads what a request claims (key id, nonce, time, string to sign) and refuses a
malformed one; `Secret.signs` compares the signature with the secret's in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from certwatch.vod.errors import ApiError, invalid, missing

ACS3 = "ACS3-HMAC-SHA256"
RPC_V1 = "HMAC-SHA1"
MAX_SKEW = timedelta(minutes=15)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class Request:
    """What the signature covers. `query` and `form` are decoded; header names lower-case."""

    method: str
    path: str
    query: Mapping[str, str]
    form: Mapping[str, str]
    headers: Mapping[str, Sequence[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return ",".join(values) if values else None


@dataclass(frozen=True, slots=True)
class Claim:
    scheme: str
    access_key_id: str
    nonce: str
    timestamp: datetime
    string_to_sign: str
    signature: str


def parse(request: Request) -> Claim:
    """The signature a request carries; `ApiError` when it is absent or incomplete."""
    authorization = request.header("authorization")
    if authorization is not None and authorization.startswith(ACS3 + " "):
        return _storable(_parse_acs3(request, authorization))
    if "Signature" in request.query or "Signature" in request.form:
        return _storable(_parse_rpc_v1(request))
    raise ApiError("IncompleteSignature", "The request is not signed: give an ACS3-HMAC-SHA256 Authorization header or a Signature parameter.")  # fmt: skip


def _storable(claim: Claim) -> Claim:
    """PostgreSQL text holds no NUL: such a nonce would fail the whole batch of nonces it went in."""
    if "\x00" in claim.nonce or "\x00" in claim.access_key_id:
        raise invalid(
            "SignatureNonce" if "\x00" in claim.nonce else "AccessKeyId", "must not contain a NUL character"
        )
    return claim


class Secret:
    """An AccessKey secret with the HMAC of each scheme keyed once: a copy of a keyed HMAC
    per request instead of `hmac.digest`, which in OpenSSL 3 looks the digest up, locks and
    allocates every time (a fifth of a signed request's handling in bench/vod_api.py)."""

    __slots__ = ("_acs3", "_rpc_v1")

    def __init__(self, secret: str) -> None:
        self._acs3 = hmac.new(secret.encode(), digestmod="sha256")
        self._rpc_v1 = hmac.new((secret + "&").encode(), digestmod="sha1")

    def __repr__(self) -> str:
        return "Secret(...)"  # never the key

    def signs(self, claim: Claim) -> bool:
        """Whether this secret produces the claimed signature (constant-time comparison)."""
        mac = (self._acs3 if claim.scheme == ACS3 else self._rpc_v1).copy()
        mac.update(claim.string_to_sign.encode())
        if claim.scheme == ACS3:
            return hmac.compare_digest(mac.hexdigest().encode(), claim.signature.lower().encode())
        return hmac.compare_digest(base64.b64encode(mac.digest()), claim.signature.encode())


def check_fresh(claim: Claim, now: datetime, *, skew: timedelta = MAX_SKEW) -> None:
    if abs(now - claim.timestamp) > skew:
        raise ApiError("InvalidTimeStamp.Expired", f"Specified time stamp or date value is expired: {claim.timestamp.strftime(TIME_FORMAT)} is more than {int(skew.total_seconds() // 60)} minutes from the server's time.")  # fmt: skip


_REQUIRED_SIGNED = frozenset({"host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"})
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _parse_acs3(request: Request, authorization: str) -> Claim:
    fields: dict[str, str] = {}
    for part in authorization[len(ACS3) + 1 :].split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not value:
            raise _incomplete(f"the Authorization part {part.strip()!r} is not Name=Value")
        fields[name] = value
    for name in ("Credential", "SignedHeaders", "Signature"):
        if name not in fields:
            raise _incomplete(f"the Authorization header has no {name}")
    signed = fields["SignedHeaders"].split(";")
    signed_set = set(signed)
    if len(signed_set) != len(signed) or signed != sorted(signed):
        raise _incomplete("SignedHeaders must be lower-case names, sorted, each once")
    headers = request.headers
    unsigned = _REQUIRED_SIGNED.difference(signed_set).union(
        h for h in headers if h.startswith("x-acs-") and h not in signed_set
    )
    if unsigned:
        raise _incomplete(f"SignedHeaders must include {', '.join(sorted(unsigned))}")
    lines = []
    for name in signed:  # a header sent once (every one the SDK sends) needs no sorting
        values = headers.get(name)
        if values is None:
            raise _incomplete(f"the signed header {name} is not in the request")
        value = values[0].strip() if len(values) == 1 else ",".join(sorted(v.strip() for v in values))
        lines.append(f"{name}:{value}\n")
    canonical_headers = "".join(lines)
    payload = request.header("x-acs-content-sha256") or ""
    body_sha256 = hashlib.sha256(request.body).hexdigest() if request.body else _EMPTY_SHA256
    if not hmac.compare_digest(payload.lower(), body_sha256):
        raise ApiError("SignatureDoesNotMatch", "x-acs-content-sha256 is not the SHA-256 of the request body.")  # fmt: skip
    query = "&".join(f"{k}={percent(v)}" for k, v in sorted(request.query.items()))
    canonical = "\n".join([request.method, request.path or "/", query, canonical_headers,
                           fields["SignedHeaders"], payload])  # fmt: skip
    nonce = request.header("x-acs-signature-nonce")
    if not nonce:
        raise missing("x-acs-signature-nonce")
    return Claim(
        scheme=ACS3, access_key_id=fields["Credential"], nonce=nonce,
        timestamp=_timestamp("x-acs-date", request.header("x-acs-date") or ""),
        string_to_sign=f"{ACS3}\n{hashlib.sha256(canonical.encode()).hexdigest()}",
        signature=fields["Signature"],
    )  # fmt: skip


def _parse_rpc_v1(request: Request) -> Claim:
    params = {**request.query, **request.form}
    for name in ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise missing(name)
    if params["SignatureMethod"] != RPC_V1:
        raise invalid("SignatureMethod", f"only {RPC_V1} is supported")
    if params["SignatureVersion"] != "1.0":
        raise invalid("SignatureVersion", "only 1.0 is supported")
    return Claim(
        scheme=RPC_V1, access_key_id=params["AccessKeyId"], nonce=params["SignatureNonce"],
        timestamp=_timestamp("Timestamp", params["Timestamp"]),
        string_to_sign=f"{request.method}&%2F&{_encoded_canonical(params)}",
        signature=params["Signature"],
    )  # fmt: skip


def _encoded_canonical(params: Mapping[str, str]) -> str:
    """`percent` of RPC v1's canonical query (every parameter but `Signature`, sorted by
    name, `percent(name)=percent(value)` joined by `&`), as its string to sign holds it.

    For ASCII parameters (what the SDKs send) in a few C-level passes rather than two calls
    a parameter: the pairs joined with NUL and SOH for `=` and `&`, the few characters to
    escape escaped twice (`%25XX`), then the separators turned into `%3D` and `%26`. A NUL
    or SOH of a value's own would pass for a separator, so such a query takes the general
    path."""
    unsigned = dict(params)
    del unsigned["Signature"]
    items = sorted(unsigned.items())
    joined = "\x01".join(map("\x00".join, items))
    if joined.isascii() and joined.count("\x00") == len(items) and joined.count("\x01") == len(items) - 1:
        escaped = _RESERVED_BUT_SEPARATORS.sub(_escape_twice, joined)
        return escaped.replace("\x00", "%3D").replace("\x01", "%26")
    return _percent_encoded("&".join(f"{percent(k)}={percent(v)}" for k, v in items))


_UNRESERVED = re.compile(rb"[^A-Za-z0-9_.~-]")
_RESERVED_TEXT = re.compile(r"[^A-Za-z0-9_.~-]")
_ASCII_ESCAPES = {c: f"%{c:02X}" for c in range(128) if _RESERVED_TEXT.match(chr(c))}
_RESERVED_BUT_SEPARATORS = re.compile(r"[^A-Za-z0-9_.~\x00\x01-]")
_TWICE_ESCAPED = {chr(c): f"%25{c:02X}" for c in _ASCII_ESCAPES}


def _escape_twice(match: re.Match[str]) -> str:
    return _TWICE_ESCAPED[match.group()]


def _escape(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]


def percent(text: str) -> str:
    """`urllib.parse.quote(text, safe="~")` (RFC 3986: all but unreserved characters escaped,
    UTF-8, upper-case hex), in one regular-expression pass instead of a Python loop over
    every byte: canonicalizing is most of a signature check's CPU."""
    if _RESERVED_TEXT.search(text) is None:  # most values (ids, nonces, names) need nothing
        return text
    if text.isascii():  # a timestamp's colons: one C-level pass, no callback a character
        return text.translate(_ASCII_ESCAPES)
    return _UNRESERVED.sub(_escape, text.encode()).decode("ascii")


def _percent_encoded(text: str) -> str:
    """`percent` of a string already made of `percent`'s output joined by `=` and `&`: only
    those two and `%` need escaping, three C-level replaces instead of a regex callback for
    every one of them."""
    return text.replace("%", "%25").replace("=", "%3D").replace("&", "%26")


@lru_cache(maxsize=1024)  # concurrent requests share their second: strptime is slow
def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def _timestamp(name: str, text: str) -> datetime:
    if not text:
        raise missing(name)
    try:
        return _parse_time(text)
    except ValueError:
        raise ApiError("InvalidTimeStamp.Format", f"{name} {text!r} is not in the yyyy-MM-ddTHH:mm:ssZ format (UTC).") from None  # fmt: skip


def _incomplete(rule: str) -> ApiError:
    return ApiError("IncompleteSignature", f"The request signature is incomplete: {rule}.")
