"""Unit tests for target validation: one example per rule, then properties that try to break it."""

from __future__ import annotations

import ipaddress
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from certwatch.rules.targets import (
    DEFAULT_PORT,
    MAX_DOMAIN_LIST_LENGTH,
    MAX_HOSTNAME_LENGTH,
    MAX_TARGET_INPUT_LENGTH,
    FieldViolation,
    RowResult,
    Target,
    ValidationError,
    normalize_hostname,
    normalize_target,
    parse_domain_list,
    target_warnings,
    unicode_hostname,
    validate_port,
)

# --- accepted forms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("www.example.com", Target("www.example.com", 443, False)),
        ("  WWW.Example.COM  ", Target("www.example.com", 443, False)),
        ("example.com.", Target("example.com", 443, False)),
        ("example.com:8443", Target("example.com", 8443, False)),
        ("example.com.:8443", Target("example.com", 8443, False)),
        ("a-b.c-d.example", Target("a-b.c-d.example", 443, False)),
        ("123.example.com", Target("123.example.com", 443, False)),
        ("203.0.113.7", Target("203.0.113.7", 443, True)),
        ("203.0.113.7:9443", Target("203.0.113.7", 9443, True)),
        ("127.0.0.1:8443", Target("127.0.0.1", 8443, True)),
        ("2001:DB8::1", Target("2001:db8::1", 443, True)),
        ("2001:0db8:0000::0001", Target("2001:db8::1", 443, True)),
        ("[2001:db8::1]", Target("2001:db8::1", 443, True)),
        ("[2001:db8::1]:8443", Target("2001:db8::1", 8443, True)),
        ("[::1]:443", Target("::1", 443, True)),
    ],
)
def test_accepted_forms(raw: str, expected: Target) -> None:
    assert normalize_target(raw) == expected


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("例え。テスト", "xn--r8jz45g.xn--zckzah"),  # ideographic full stop separates labels
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("xn--strae-oqa.de", "xn--strae-oqa.de"),  # IDNA 2008 'straße', as registered
        ("\u03a3\u039f\u03a6\u039f\u03a3.gr", "xn--0xaakcn.gr"),  # capitals fold to lower case
        ("XN--BCHER-KVA.DE", "xn--bcher-kva.de"),
        ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "example.com"),  # full-width
    ],
)
def test_internationalised_names_become_punycode(raw: str, host: str) -> None:
    target = normalize_target(raw)
    assert target.host == host
    assert target.host.isascii()
    assert not target.is_ip


def test_authority_and_server_name() -> None:
    assert normalize_target("Example.com").authority == "example.com:443"
    assert normalize_target("example.com").server_name == "example.com"
    ipv6 = normalize_target("[2001:db8::1]:8443")
    assert ipv6.authority == "[2001:db8::1]:8443"
    assert str(ipv6) == "[2001:db8::1]:8443"
    assert ipv6.server_name is None
    assert normalize_target("203.0.113.7").server_name is None


# --- refused forms: one per rule ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "rule"),
    [
        ("", "domain", "required"),
        ("   ", "domain", "required"),
        ("a" * (MAX_TARGET_INPUT_LENGTH + 1), "domain", "too_long"),
        ("exa mple.com", "domain", "whitespace"),
        ("example.com\t:443", "domain", "whitespace"),
        ("exam\x00ple.com", "domain", "invalid_character"),
        ("exam\u200bple.com", "domain", "invalid_character"),
        ("https://example.com", "domain", "url"),
        ("HTTP://example.com", "domain", "url"),
        ("ftp://example.com", "domain", "url"),
        ("http:example.com", "domain", "url"),
        ("example.com/path", "domain", "url"),
        ("example.com?q=1", "domain", "url"),
        ("example.com#frag", "domain", "url"),
        ("user@example.com", "domain", "userinfo"),
        ("user:pw@example.com:443", "domain", "userinfo"),
        ("*.example.com", "domain", "wildcard"),
        ("www.*.example.com", "domain", "wildcard"),
        ("*", "domain", "wildcard"),
        ("example.id", "domain", "unsupported_tld"),
        ("www.example.co.id", "domain", "unsupported_tld"),
        ("EXAMPLE.ID.", "domain", "unsupported_tld"),
        ("localhost", "domain", "single_label"),
        ("com", "domain", "single_label"),
        ("example.123", "domain", "numeric_tld"),
        ("a..example.com", "domain", "empty_label"),
        (".example.com", "domain", "empty_label"),
        ("example.com..", "domain", "empty_label"),
        (".", "domain", "required"),
        ("-example.com", "domain", "hyphen"),
        ("example-.com", "domain", "hyphen"),
        ("example.com-", "domain", "hyphen"),
        ("exa_mple.com", "domain", "invalid_character"),
        ("exa!mple.com", "domain", "invalid_character"),
        ("a" * 64 + ".com", "domain", "label_too_long"),
        (".".join(["a" * 63] * 4) + ".com", "domain", "too_long"),
        ("xn--a.com", "domain", "idna"),
        ("xn--abc-.com", "domain", "idna"),
        ("xn----eha.de", "domain", "hyphen"),  # punycode of '-ü'
        ("-ü.de", "domain", "hyphen"),
        ("straße.de", "domain", "idna_ambiguous"),  # strasse.de or xn--strae-oqa.de?
        ("\u03c3\u03bf\u03c6\u03bf\u03c2.gr", "domain", "idna_ambiguous"),  # final sigma
        ("xn--Ab-fga.de", "domain", "idna"),  # decodes to "abÇ": upper case, never produced
        ("xn--ls8h-.la", "domain", "idna"),
        ("a\u00ad.de", "domain", "invalid_character"),  # soft hyphen is invisible
        ("1.2.3", "domain", "ip_invalid"),
        ("256.1.1.1", "domain", "ip_invalid"),
        ("01.2.3.4", "domain", "ip_invalid"),
        ("1.2.3.4.5", "domain", "ip_invalid"),
        ("0.0.0.0", "domain", "ip_not_unicast"),
        ("224.0.0.1", "domain", "ip_not_unicast"),
        ("255.255.255.255", "domain", "ip_not_unicast"),
        ("::", "domain", "ip_not_unicast"),
        ("ff02::1", "domain", "ip_not_unicast"),
        ("2001:db8::zz", "domain", "ip_invalid"),
        ("2001:db8::1:443:", "domain", "ip_invalid"),
        ("[2001:db8::1", "domain", "ip_invalid"),
        ("[2001:db8::1]443", "domain", "ip_invalid"),
        ("[203.0.113.7]:443", "domain", "ip_invalid"),
        ("[example.com]", "domain", "ip_invalid"),
        ("fe80::1%eth0", "domain", "ip_zone"),
        ("[fe80::1%25eth0]:443", "domain", "ip_zone"),
        ("example.com:", "port", "port_syntax"),
        ("example.com:https", "port", "port_syntax"),
        ("example.com:-1", "port", "port_syntax"),
        ("example.com:123456", "port", "port_syntax"),
        ("example.com:0", "port", "port_range"),
        ("example.com:65536", "port", "port_range"),
        ("[::1]:0", "port", "port_range"),
        ("example.com:٤٤٣", "port", "port_syntax"),  # Arabic-Indic digits are not ASCII
    ],
)
def test_refused_forms(raw: str, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_target(raw)
    error = caught.value
    assert (error.field, error.rule) == (field, rule)
    assert error.violations == (FieldViolation(field, rule, error.message),)
    assert error.message
    assert field in str(error) and rule in str(error)


def test_messages_say_what_to_do() -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_target("*.example.com")
    assert "www.example.com" in caught.value.message
    with pytest.raises(ValidationError) as caught:
        normalize_target("https://example.com/")
    assert "host name only" in caught.value.message
    with pytest.raises(ValidationError) as caught:
        normalize_target("example.com:70000")
    assert "1 to 65535" in caught.value.message


def test_long_user_text_is_cut_in_messages() -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_target("a" * 200 + "_.com")
    assert len(caught.value.message) < 300


def test_hostname_at_exact_limits_is_accepted() -> None:
    label63 = "a" * 63
    name = ".".join([label63, label63, label63, "b" * 57, "com"])
    assert len(name) == MAX_HOSTNAME_LENGTH
    assert normalize_target(name).host == name
    assert normalize_target(name + ".").host == name
    with pytest.raises(ValidationError) as caught:
        normalize_target("a." + name)
    assert caught.value.rule == "too_long"


def test_normalize_hostname_applies_dns_rules_only() -> None:
    # ".id" is a product rule for targets, not a DNS rule (e-mail domains may end in it).
    assert normalize_hostname("Mail.Example.ID") == "mail.example.id"
    with pytest.raises(ValidationError) as caught:
        normalize_hostname("bad_name.com", field="email")
    assert caught.value.field == "email"


# --- ports --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 443), ("", 443), ("  ", 443), (1, 1), (65535, 65535), ("8443", 8443), (" 443 ", 443)],
)
def test_validate_port_accepts(value: int | str | None, expected: int) -> None:
    assert validate_port(value) == expected


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (0, "port_range"),
        (65536, "port_range"),
        (-443, "port_range"),
        (True, "port_syntax"),
        ("4 43", "port_syntax"),
        ("0x1bb", "port_syntax"),
        ("+443", "port_syntax"),
    ],
)
def test_validate_port_refuses(value: int | str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_port(value, field="https_port")
    assert (caught.value.field, caught.value.rule) == ("https_port", rule)


def test_separate_port_field() -> None:
    assert normalize_target("example.com", port=8443).port == 8443
    assert normalize_target("example.com", port="8443").port == 8443
    assert normalize_target("example.com", port="").port == DEFAULT_PORT
    assert normalize_target("example.com:8443", port=8443).port == 8443
    assert normalize_target("2001:db8::1", port=8443) == Target("2001:db8::1", 8443, True)
    with pytest.raises(ValidationError) as caught:
        normalize_target("example.com:8443", port=443)
    assert (caught.value.field, caught.value.rule) == ("port", "port_conflict")


@pytest.mark.parametrize("port", [80, 8080])
def test_plain_http_ports_are_accepted_with_a_warning(port: int) -> None:
    target = normalize_target(f"example.com:{port}")
    assert target.port == port
    (warning,) = target_warnings(target)
    assert warning.code == "plain_http_port"
    assert str(port) in warning.message


@pytest.mark.parametrize("port", [443, 8443, 81, 8081])
def test_other_ports_have_no_warning(port: int) -> None:
    assert target_warnings(normalize_target("example.com", port=port)) == ()


# --- lists --------------------------------------------------------------------------------


def test_parse_domain_list_reports_each_entry() -> None:
    text = "a.example.com, A.Example.com:443\uff0cb.example.com\u3001 *.c.example\n\n c.example.com:80 ,,"
    results = parse_domain_list(text)
    assert [r.index for r in results] == [1, 2, 3, 4, 5]
    assert [r.raw for r in results] == [
        "a.example.com",
        "A.Example.com:443",
        "b.example.com",
        "*.c.example",
        "c.example.com:80",
    ]
    assert [r.accepted for r in results] == [True, False, True, False, True]
    assert results[1].error is not None and results[1].error.rule == "duplicate"
    assert "entry 1" in results[1].error.description
    assert results[3].error is not None and results[3].error.rule == "wildcard"
    assert [w.code for w in results[4].warnings] == ["plain_http_port"]


def test_parse_domain_list_same_host_other_port_is_not_a_duplicate() -> None:
    results = parse_domain_list("example.com,example.com:8443,example.com.:443")
    assert [r.accepted for r in results] == [True, True, False]


@pytest.mark.parametrize("text", ["", "  ,\n, ", "\uff0c\u3001"])
def test_parse_domain_list_refuses_empty(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_domain_list(text)
    assert (caught.value.field, caught.value.rule) == ("domains", "required")


def test_parse_domain_list_bounds() -> None:
    many = ",".join(f"d{i}.example.com" for i in range(6))
    assert len(parse_domain_list(many, max_items=6)) == 6
    with pytest.raises(ValidationError) as caught:
        parse_domain_list(many, max_items=5)
    assert caught.value.rule == "too_many"
    with pytest.raises(ValidationError) as caught:
        parse_domain_list("a" * (MAX_DOMAIN_LIST_LENGTH + 1))
    assert caught.value.rule == "too_long"
    with pytest.raises(ValueError):
        parse_domain_list("a.com", max_items=0)


def test_row_result_invariant() -> None:
    with pytest.raises(ValueError):
        RowResult(1, "x", None)
    with pytest.raises(ValueError):
        RowResult(1, "x", Target("a.com", 443, False), error=FieldViolation("domain", "r", "d"))


def test_validation_error_from_violations() -> None:
    violations = [FieldViolation("a", "r1", "d1"), FieldViolation("b", "r2", "d2")]
    error = ValidationError.from_violations(violations)
    assert error.violations == tuple(violations)
    assert (error.field, error.rule, error.message) == ("a", "r1", "d1")
    assert "b: d2 [r2]" in str(error)
    assert error.field_descriptions() == [("a", "d1"), ("b", "d2")]
    with pytest.raises(ValueError):
        ValidationError.from_violations([])


# --- properties ---------------------------------------------------------------------------

_LDH = string.ascii_lowercase + string.digits


@st.composite
def _labels(draw: st.DrawFn) -> str:
    body = draw(st.text(alphabet=_LDH + "-", min_size=0, max_size=61))
    label = draw(st.sampled_from(_LDH)) + body + draw(st.sampled_from(_LDH)) if body else ""
    label = label or draw(st.sampled_from(_LDH))
    assume(label[2:4] != "--")  # reserved for IDNA ("xn--")
    return label


@st.composite
def _hostnames(draw: st.DrawFn) -> str:
    labels = draw(st.lists(_labels(), min_size=1, max_size=4))
    tld = draw(st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=12))
    assume(tld != "id")
    name = ".".join([*labels, tld])
    assume(len(name) <= MAX_HOSTNAME_LENGTH)
    return name


def _random_case(data: st.DataObject, text: str) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.upper() if flip else ch for ch, flip in zip(text, flips, strict=True))


@settings(max_examples=150, deadline=None)
@given(st.data(), _hostnames(), st.none() | st.integers(1, 65535), st.booleans())
def test_any_valid_label_sequence_round_trips(
    data: st.DataObject, name: str, port: int | None, trailing_dot: bool
) -> None:
    typed = _random_case(data, name) + ("." if trailing_dot else "")
    if port is not None:
        typed += f":{port}"
    target = normalize_target(typed)
    assert target == Target(name, DEFAULT_PORT if port is None else port, False)


@settings(max_examples=100, deadline=None)
@given(st.ip_addresses(), st.integers(1, 65535))
def test_any_unicast_ip_round_trips(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    assume(not (address.is_unspecified or address.is_multicast))
    assume(str(address) != "255.255.255.255")
    text = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    assert normalize_target(text) == Target(str(address), port, True)


# Biased towards characters that form hosts, so many draws succeed and reach deep rules.
_TARGETISH = st.lists(
    st.sampled_from([*"abcxyz019.-:[]%_*/@ ", "ü", "例", "\u3002", "\uff21", "\u00ad", "xn--", ".id"]),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TARGETISH | st.text(max_size=80))
def test_normalize_raises_only_validation_error_and_is_idempotent(raw: str) -> None:
    try:
        target = normalize_target(raw)
    except ValidationError as error:
        assert error.field in {"domain", "port"}
        assert error.rule and error.message
        return
    assert target.host == target.host.lower() and target.host.isascii()
    assert not target.host.endswith(".")
    assert 1 <= target.port <= 65535
    assert normalize_target(target.authority) == target
    assert normalize_target(target.host, port=target.port) == target


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["ü", "é", "例", "ß", "a", "1", "-", "ω"]), min_size=1, max_size=20))
def test_internationalised_labels_are_idempotent(chars: list[str]) -> None:
    raw = "".join(chars) + ".example"
    try:
        target = normalize_target(raw)
    except ValidationError:
        return
    assert normalize_target(target.host) == target


@settings(max_examples=150, deadline=None)
@given(st.lists(_TARGETISH, max_size=20), st.sampled_from([",", ", ", "\n", "\uff0c", " "]))
def test_parse_domain_list_one_result_per_entry(entries: list[str], separator: str) -> None:
    text = separator.join(entries)
    try:
        results = parse_domain_list(text)
    except ValidationError as error:
        assert error.field == "domains"
        return
    assert [r.index for r in results] == list(range(1, len(results) + 1))
    accepted = [r.target for r in results if r.target is not None]
    assert len(accepted) == len(set(accepted))
    for result in results:
        assert (result.target is None) != (result.error is None)
        if result.target is not None:
            assert normalize_target(result.raw) == result.target


@pytest.mark.parametrize(
    ("host", "shown"),
    [("xn--bcher-kva.example", "bücher.example"), ("xn--r8jz45g.xn--zckzah", "例え.テスト"),
     ("www.example.com", "www.example.com"), ("2001:db8::1", "2001:db8::1"),
     ("xn--strae-oqa.de", "straße.de"), ("xn--zz.example", "xn--zz.example")],
)  # fmt: skip
def test_unicode_hostname_shows_stored_names_as_typed(host: str, shown: str) -> None:
    assert unicode_hostname(host) == shown
