"""Validation of monitoring targets: what a user may type as "Domain Name/IP Address".

Pure functions over strings, no I/O. The rules come from the product description: one
single domain name (no wildcard, no URL) or one IP address, an HTTPS port that defaults to
443, internationalised names stored as punycode, and names under ``.id`` refused.

Errors are data: every refusal is a :class:`ValidationError` carrying one or more
:class:`FieldViolation` (field, rule, description), so the gRPC edge can turn it into a
``google.rpc.BadRequest`` without parsing messages. Warnings (a plausible but probably
wrong input, such as port 80) are returned, never raised, because the user may mean it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from encodings import idna as _idna

__all__ = [
    "DEFAULT_MAX_LIST_ITEMS",
    "DEFAULT_PORT",
    "MAX_DOMAIN_LIST_LENGTH",
    "MAX_HOSTNAME_LENGTH",
    "MAX_LABEL_LENGTH",
    "MAX_PORT",
    "MAX_TARGET_INPUT_LENGTH",
    "MIN_PORT",
    "PLAIN_HTTP_PORTS",
    "UNSUPPORTED_SUFFIXES",
    "FieldViolation",
    "RowResult",
    "Target",
    "TargetWarning",
    "ValidationError",
    "normalize_hostname",
    "normalize_target",
    "parse_domain_list",
    "target_warnings",
    "unicode_hostname",
    "validate_port",
]

DEFAULT_PORT = 443
MIN_PORT = 1
MAX_PORT = 65535
#: Ports that almost always serve plain HTTP; the product calls them a common misconfiguration.
PLAIN_HTTP_PORTS: frozenset[int] = frozenset({80, 8080})
#: The product does not support names under these suffixes (compared on the punycode form).
UNSUPPORTED_SUFFIXES: tuple[str, ...] = ("id",)

MAX_LABEL_LENGTH = 63
MAX_HOSTNAME_LENGTH = 253
#: Longest accepted entry after trimming: a 253-char name, a trailing dot and ":65535".
MAX_TARGET_INPUT_LENGTH = 260
_MAX_PORT_DIGITS = 5
#: Longest comma-separated list accepted in one request (500 entries of ~260 chars + slack).
MAX_DOMAIN_LIST_LENGTH = 200_000
DEFAULT_MAX_LIST_ITEMS = 500

_LDH_LABEL = re.compile(r"[a-z0-9-]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")
_ASCII_DIGITS = re.compile(r"[0-9]+")
#: Separators between list entries: ASCII, full-width and ideographic commas, any whitespace.
_LIST_SEPARATORS = re.compile(r"[,\uff0c\u3001\s]+")
#: Label separators that IDNA treats as a full stop (RFC 3490 section 3.1).
_IDNA_DOTS = re.compile("[.\u3002\uff0e\uff61]")
#: Characters that IDNA 2003 (the stdlib codec) maps away but IDNA 2008 keeps; typed in
#: Unicode they name two different hosts, so they are refused rather than guessed.
_DEVIATIONS = frozenset("\u00df\u1e9e\u03c2")
_DEVIATION_PLACEHOLDERS = str.maketrans(dict.fromkeys("\u00df\u03c2", "a"))
_EXAMPLE = "'www.example.com', 'example.com:8443', '203.0.113.7' or '[2001:db8::1]:443'"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One broken rule, shaped like ``google.rpc.BadRequest.FieldViolation`` plus a code.

    ``rule`` is a stable machine-readable code (tests and clients may branch on it);
    ``description`` is for people and says what to do.
    """

    field: str
    rule: str
    description: str


class ValidationError(Exception):
    """Input was refused; carries every violation found (at least one).

    The single-violation constructor keeps the common case short; use
    :meth:`from_violations` when several fields were checked together.
    """

    violations: tuple[FieldViolation, ...]

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.violations = (FieldViolation(field, rule, message),)
        super().__init__(self._render())

    @classmethod
    def from_violations(cls, violations: Sequence[FieldViolation]) -> ValidationError:
        """Build one error from several violations, so a form is reported in one round trip."""
        if not violations:
            raise ValueError("a ValidationError needs at least one violation")
        first = violations[0]
        error = cls(first.field, first.rule, first.description)
        error.violations = tuple(violations)
        error.args = (error._render(),)
        return error

    @property
    def field(self) -> str:
        return self.violations[0].field

    @property
    def rule(self) -> str:
        return self.violations[0].rule

    @property
    def message(self) -> str:
        return self.violations[0].description

    def field_descriptions(self) -> list[tuple[str, str]]:
        """``(field, description)`` pairs, the shape ``platform.errors.InvalidArgument`` takes."""
        return [(v.field, v.description) for v in self.violations]

    def _render(self) -> str:
        return "; ".join(f"{v.field}: {v.description} [{v.rule}]" for v in self.violations)


@dataclass(frozen=True, slots=True)
class TargetWarning:
    """Something accepted but probably not what the user meant; shown, never enforced."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Target:
    """A normalised monitoring target; equal targets are the same monitored endpoint.

    ``host`` is lower-case ASCII (punycode for internationalised names) without a trailing
    dot, or the canonical text of an IP address (IPv6 without brackets).
    """

    host: str
    port: int
    is_ip: bool

    @property
    def authority(self) -> str:
        """``host:port`` text that :func:`normalize_target` maps back to this same target."""
        if self.is_ip and ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def server_name(self) -> str | None:
        """The TLS SNI to send: the name itself, or ``None`` for IP literals (RFC 6066)."""
        return None if self.is_ip else self.host

    def __str__(self) -> str:
        return self.authority


@dataclass(frozen=True, slots=True)
class RowResult:
    """The outcome for one entry of a comma-separated list: accepted or rejected, never both.

    ``index`` is the 1-based position among the non-empty entries; ``raw`` echoes the entry
    (cut to :data:`MAX_TARGET_INPUT_LENGTH`) so the user can find it.
    """

    index: int
    raw: str
    target: Target | None
    warnings: tuple[TargetWarning, ...] = ()
    error: FieldViolation | None = None

    def __post_init__(self) -> None:
        if (self.target is None) == (self.error is None):
            raise ValueError("a RowResult has exactly one of target and error")

    @property
    def accepted(self) -> bool:
        return self.target is not None


def validate_port(port: int | str | None, *, field: str = "port") -> int:
    """Return the port as an int, :data:`DEFAULT_PORT` when absent or blank.

    Accepts text because ports arrive from CSV cells and ``host:port`` entries; ``bool``
    is refused because ``True`` would otherwise silently mean port 1.
    """
    if port is None:
        return DEFAULT_PORT
    if isinstance(port, bool):
        raise ValidationError(field, "port_syntax", "port must be a number from 1 to 65535")
    if isinstance(port, str):
        text = port.strip()
        if not text:
            return DEFAULT_PORT
        if len(text) > _MAX_PORT_DIGITS or not _ASCII_DIGITS.fullmatch(text):
            raise ValidationError(
                field,
                "port_syntax",
                f"port {_quote(text)} is not a number; enter digits only, e.g. 443 or 8443",
            )
        port = int(text)
    if not MIN_PORT <= port <= MAX_PORT:
        raise ValidationError(
            field,
            "port_range",
            f"port {port} is out of range; enter an HTTPS port from {MIN_PORT} to {MAX_PORT}"
            f" (default {DEFAULT_PORT})",
        )
    return port


def normalize_target(raw: str, *, port: int | str | None = None) -> Target:
    """Parse ``host``, ``host:port``, ``[v6]:port`` or a bare IP into a :class:`Target`.

    ``port`` is the separate port field of a form or CSV row; it may repeat the port written
    in ``raw`` but not contradict it, because silently picking one would monitor the wrong
    endpoint. Raises :class:`ValidationError` (field ``domain`` or ``port``).
    """
    text = _prescreen(raw)
    host_text, port_text, bracketed = _split_host_port(text)
    written = None if port_text is None else validate_port(port_text)
    given = None if port is None or (isinstance(port, str) and not port.strip()) else port
    separate = None if given is None else validate_port(given)
    if written is not None and separate is not None and written != separate:
        raise ValidationError(
            "port",
            "port_conflict",
            f"the entry says port {written} but the port field says {separate};"
            " give the port in one place only",
        )
    final_port = written if written is not None else separate
    if bracketed:
        host, is_ip = _normalize_ipv6(host_text), True
    else:
        host, is_ip = _normalize_host(host_text)
    return Target(host=host, port=DEFAULT_PORT if final_port is None else final_port, is_ip=is_ip)


def target_warnings(target: Target) -> tuple[TargetWarning, ...]:
    """Warnings about an accepted target, derived from the target alone (so they are stable)."""
    if target.port in PLAIN_HTTP_PORTS:
        return (
            TargetWarning(
                "plain_http_port",
                f"port {target.port} usually serves plain HTTP, not HTTPS; monitoring will fail"
                f" to enable unless this server really speaks TLS on {target.port}"
                f" (standard HTTPS is {DEFAULT_PORT})",
            ),
        )
    return ()


def parse_domain_list(text: str, *, max_items: int = DEFAULT_MAX_LIST_ITEMS) -> list[RowResult]:
    """Split a user-typed list into one result per entry, rejecting repeats within it.

    Entries are separated by commas (ASCII, full-width U+FF0C or ideographic U+3001)
    and/or whitespace.
    The whole request is refused (``ValidationError`` on field ``domains``) when it is
    empty or too large, because a partial import of an oversized paste is more confusing
    than a clear "split it up"; individual bad entries are reported per row instead.
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    if len(text) > MAX_DOMAIN_LIST_LENGTH:
        raise ValidationError(
            "domains",
            "too_long",
            f"the list is {len(text)} characters long, more than {MAX_DOMAIN_LIST_LENGTH};"
            " split it into smaller batches or use the CSV upload",
        )
    entries = [entry for entry in _LIST_SEPARATORS.split(text) if entry]
    if not entries:
        raise ValidationError(
            "domains", "required", f"enter at least one domain name or IP address, e.g. {_EXAMPLE}"
        )
    if len(entries) > max_items:
        raise ValidationError(
            "domains",
            "too_many",
            f"the list has {len(entries)} entries, more than {max_items} per request;"
            " split it into smaller batches or use the CSV upload",
        )
    results: list[RowResult] = []
    first_seen: dict[Target, int] = {}
    for index, entry in enumerate(entries, start=1):
        results.append(_list_row(index, entry, first_seen))
    return results


def normalize_hostname(text: str, *, field: str = "domain") -> str:
    """Lower-case ASCII (punycode) form of a DNS host name, checked label by label.

    Shared with e-mail domain checks, so it applies only DNS rules (LDH, lengths, at least
    two labels, non-numeric TLD), not product rules such as the ``.id`` refusal.
    """
    name = text[:-1] if text.endswith((".", "\u3002", "\uff0e", "\uff61")) else text
    if not name:
        raise ValidationError(field, "required", f"enter a host name, e.g. {_EXAMPLE}")
    labels = [_label_to_ascii(label, field) for label in _IDNA_DOTS.split(name)]
    if len(labels) < 2:
        raise ValidationError(
            field,
            "single_label",
            f"{_quote(text)} has a single label; enter a fully qualified name such as 'www.example.com'",
        )
    if _ASCII_DIGITS.fullmatch(labels[-1]):
        raise ValidationError(
            field,
            "numeric_tld",
            f"{_quote(text)} ends in an all-numeric label, which is neither a valid name nor"
            " an IP address; check for a typo",
        )
    host = ".".join(labels)
    if len(host) > MAX_HOSTNAME_LENGTH:
        raise ValidationError(
            field,
            "too_long",
            f"the name is {len(host)} characters long in ASCII form, more than"
            f" {MAX_HOSTNAME_LENGTH}; check for a typo",
        )
    return host


def unicode_hostname(host: str) -> str:
    """The Unicode form of a stored (punycode) name, for display and search; ``host`` itself
    when it has no ``xn--`` label or is an IP address. Never raises: a label that does not
    decode is shown as stored."""
    labels = host.split(".")
    if not any(label.startswith("xn--") for label in labels):
        return host
    shown = []
    for label in labels:
        try:
            shown.append(_decode_ace(label, "domain") if label.startswith("xn--") else label)
        except ValidationError:
            shown.append(label)
    return ".".join(shown)


def _list_row(index: int, entry: str, first_seen: dict[Target, int]) -> RowResult:
    shown = entry[:MAX_TARGET_INPUT_LENGTH]
    try:
        target = normalize_target(entry)
    except ValidationError as error:
        return RowResult(index, shown, None, error=error.violations[0])
    earlier = first_seen.setdefault(target, index)
    if earlier != index:
        return RowResult(
            index,
            shown,
            None,
            error=FieldViolation(
                "domain",
                "duplicate",
                f"duplicate in request: {target} is the same as entry {earlier}; remove the repeat",
            ),
        )
    return RowResult(index, shown, target, warnings=target_warnings(target))


def _prescreen(raw: str) -> str:
    """Refuse whole classes of wrong input early, with a message aimed at the likely mistake."""
    text = raw.strip()
    if not text:
        raise ValidationError("domain", "required", f"enter a domain name or IP address, e.g. {_EXAMPLE}")
    if len(text) > MAX_TARGET_INPUT_LENGTH:
        raise ValidationError(
            "domain",
            "too_long",
            f"the entry is {len(text)} characters long, more than {MAX_TARGET_INPUT_LENGTH};"
            " enter one domain name or IP address",
        )
    if any(ch.isspace() for ch in text):
        raise ValidationError(
            "domain",
            "whitespace",
            "the entry contains spaces; enter one name per entry and separate entries with commas",
        )
    if any(not ch.isprintable() for ch in text):
        raise ValidationError(
            "domain", "invalid_character", "the entry contains control or invisible characters"
        )
    lowered = text.lower()
    if _SCHEME.match(text) or lowered.startswith(("http:", "https:")):
        raise ValidationError(
            "domain",
            "url",
            "enter the host name only, without 'https://'; e.g. 'www.example.com', and put a"
            " custom port after a colon: 'www.example.com:8443'",
        )
    if "@" in text:
        raise ValidationError(
            "domain",
            "userinfo",
            "the entry contains '@' (user info or an e-mail address); enter the host name only,"
            " e.g. 'www.example.com'",
        )
    if any(ch in text for ch in "/?#\\"):
        raise ValidationError(
            "domain",
            "url",
            "the entry contains a path or query; enter the host name only, e.g. 'www.example.com'",
        )
    if "*" in text:
        raise ValidationError(
            "domain",
            "wildcard",
            "wildcard names are not supported; monitoring covers single domain names, so enter"
            " each concrete name, e.g. 'www.example.com' instead of '*.example.com'",
        )
    return text


def _split_host_port(text: str) -> tuple[str, str | None, bool]:
    """Return (host, port text or None, host was a bracketed IPv6 literal)."""
    if text.startswith("["):
        close = text.find("]")
        if close == -1:
            raise ValidationError(
                "domain", "ip_invalid", "missing ']'; write IPv6 with a port as '[2001:db8::1]:443'"
            )
        rest = text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValidationError(
                "domain",
                "ip_invalid",
                "unexpected text after ']'; write IPv6 with a port as '[2001:db8::1]:443'",
            )
        return text[1:close], (rest[1:] if rest else None), True
    colons = text.count(":")
    if colons >= 2:
        return text, None, False
    if colons == 1:
        host, port_text = text.split(":")
        if not port_text:
            raise ValidationError(
                "port", "port_syntax", "nothing after ':'; add the port number or remove the colon"
            )
        return host, port_text, False
    return text, None, False


def _normalize_host(text: str) -> tuple[str, bool]:
    if ":" in text:
        return _normalize_ipv6(text, bare=True), True
    candidate = text[:-1] if text.endswith(".") else text
    if _DIGITS_AND_DOTS.fullmatch(candidate):
        return _checked_ip(candidate, "IPv4", "e.g. '203.0.113.7' (four numbers 0-255)"), True
    host = normalize_hostname(text)
    last = host.rsplit(".", 1)[-1]
    if last in UNSUPPORTED_SUFFIXES:
        raise ValidationError(
            "domain",
            "unsupported_tld",
            f"names ending in '.{last}' are not supported by domain monitoring",
        )
    return host, False


def _normalize_ipv6(text: str, *, bare: bool = False) -> str:
    if "%" in text:
        raise ValidationError(
            "domain",
            "ip_zone",
            "IPv6 zone ids ('%eth0') only make sense on one machine; use a global address",
        )
    how = "write it with a port as '[2001:db8::1]:8443'" if bare else "e.g. '[2001:db8::1]:443'"
    return _checked_ip(text, "IPv6", how)


def _checked_ip(text: str, family: str, how: str) -> str:
    try:
        address = ipaddress.IPv4Address(text) if family == "IPv4" else ipaddress.IPv6Address(text)
    except ValueError:
        raise ValidationError(
            "domain", "ip_invalid", f"{_quote(text)} is not a valid {family} address; {how}"
        ) from None
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        raise ValidationError(
            "domain",
            "ip_not_unicast",
            f"{address} cannot host an HTTPS server; enter the server's own address",
        )
    return str(address)


def _label_to_ascii(label: str, field: str) -> str:
    """One label to its ASCII form, enforcing LDH, length and hyphen rules on both forms."""
    if not label:
        raise ValidationError(field, "empty_label", "the name has an empty label ('..' or a leading dot)")
    if label.isascii():
        ascii_label = label.lower()
    else:
        if any(ch in _DEVIATIONS for ch in label):
            raise ValidationError(
                field,
                "idna_ambiguous",
                f"the label {_quote(label)} contains 'ß' or 'ς', which the two IDNA standards"
                " convert differently (e.g. 'straße' to 'strasse' or 'xn--strae-oqa'); enter"
                " the ASCII form of the name you mean",
            )
        try:
            ascii_label = _idna.ToASCII(label).decode("ascii").lower()
        except UnicodeError:
            raise ValidationError(
                field,
                "idna",
                f"the label {_quote(label)} cannot be converted to an internationalised domain"
                " name (punycode); check for symbols or invisible characters",
            ) from None
    # Checking the decoded form of the ASCII label (not the typed text) makes a name and its
    # punycode spelling pass or fail together, so normalising twice changes nothing.
    unicode_label = _decode_ace(ascii_label, field) if ascii_label.startswith("xn--") else None
    if len(ascii_label) > MAX_LABEL_LENGTH:
        raise ValidationError(
            field,
            "label_too_long",
            f"the label {_quote(label)} is {len(ascii_label)} characters in ASCII form, more than"
            f" {MAX_LABEL_LENGTH}",
        )
    if not _LDH_LABEL.fullmatch(ascii_label):
        bad = next(ch for ch in ascii_label if not _LDH_LABEL.fullmatch(ch))
        raise ValidationError(
            field,
            "invalid_character",
            f"the label {_quote(label)} contains {_quote(bad)}; names may use letters, digits"
            " and hyphens only",
        )
    for form in (ascii_label, unicode_label):
        if form is not None and (form.startswith("-") or form.endswith("-")):
            raise ValidationError(
                field,
                "hyphen",
                f"the label {_quote(label)} starts or ends with a hyphen, which DNS does not allow",
            )
    return ascii_label


def _decode_ace(ascii_label: str, field: str) -> str:
    """Check that an ``xn--`` label is real punycode, so stored names always decode.

    Accepts exactly what :func:`_label_to_ascii` could have produced from Unicode, plus the
    IDNA 2008 spellings of the deviation characters (``xn--strae-oqa`` for ``straße``),
    which are how such names are registered and which IDNA 2003 cannot round-trip.
    """
    body = ascii_label[len("xn--") :]
    try:
        decoded = body.encode("ascii").decode("punycode")
        stable = decoded.translate(_DEVIATION_PLACEHOLDERS)
        valid = (
            bool(decoded)
            and not decoded.isascii()
            and not stable.startswith("xn--")
            and decoded.encode("punycode") == body.encode("ascii")
            and _idna.nameprep(stable) == stable
        )
    except UnicodeError:
        valid = False
    if not valid:
        raise ValidationError(
            field,
            "idna",
            f"the label {_quote(ascii_label)} starts with 'xn--' but is not valid punycode",
        )
    return decoded


def _quote(text: str, limit: int = 64) -> str:
    """Quote user text for a message, cut short so one bad entry cannot bloat a response."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
