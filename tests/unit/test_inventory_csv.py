"""Unit tests for the CSV batch import: whole-file errors, per-row results, and the template."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certwatch.inventory.csv_import import (
    COLUMNS,
    DEFAULT_ENABLE,
    TEMPLATE,
    CsvRow,
    ImportedDomain,
    parse_csv,
)
from certwatch.rules.targets import FieldViolation, Target, ValidationError

HEADER = "domain,port,contacts,enable\n"


def _file_error(data: bytes, **limits: int) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_csv(data, **limits)
    assert {v.field for v in caught.value.violations} == {"file"}
    return caught.value


def _rules(row: CsvRow) -> set[tuple[str, str]]:
    return {(v.field, v.rule) for v in row.errors}


# --- the template -------------------------------------------------------------------------


def test_template_as_written_imports_nothing() -> None:
    assert parse_csv(TEMPLATE.encode()) == []


def test_template_header_and_examples() -> None:
    lines = TEMPLATE.splitlines()
    assert ",".join(COLUMNS) in lines
    assert all(line.startswith("#") or line == ",".join(COLUMNS) for line in lines)
    header_at = lines.index(",".join(COLUMNS))
    examples = [line.removeprefix("# ") for line in lines[header_at + 1 :]]
    uncommented = "\n".join(lines[: header_at + 1] + examples)
    rows = parse_csv(uncommented.encode())
    assert [row.accepted for row in rows] == [True, True]
    first = rows[0].domain
    assert first == ImportedDomain(Target("www.example.com", 443, False), ("ops", "alice"), True)
    assert rows[0].row == lines.index(",".join(COLUMNS)) + 2


def test_template_explains_every_column() -> None:
    for column in COLUMNS:
        assert f"# {column}" in TEMPLATE
    assert ".id" in TEMPLATE and "443" in TEMPLATE and "UTF-8" in TEMPLATE


# --- accepted input -----------------------------------------------------------------------


def test_rows_are_parsed_with_defaults() -> None:
    data = (HEADER + "www.example.com,,,\nexample.org,8443,ops,yes\n[2001:db8::1]:9443\n").encode()
    rows = parse_csv(data)
    assert rows == [
        CsvRow(2, ImportedDomain(Target("www.example.com", 443, False), (), DEFAULT_ENABLE)),
        CsvRow(3, ImportedDomain(Target("example.org", 8443, False), ("ops",), True)),
        CsvRow(4, ImportedDomain(Target("2001:db8::1", 9443, True), (), DEFAULT_ENABLE)),
    ]


def test_bom_crlf_blank_lines_comments_and_header_case() -> None:
    text = "\ufeff# exported\r\n\r\n Domain , PORT,Enable\r\n\r\n,,\r\na.example.com,443,TRUE\r\n"
    text += '# a comment with a stray " quote\r\nb.example.com,,No\r\n\r\n'
    rows = parse_csv(text.encode())
    assert [(r.row, r.domain) for r in rows] == [
        (6, ImportedDomain(Target("a.example.com", 443, False), (), True)),
        (8, ImportedDomain(Target("b.example.com", 443, False), (), False)),
    ]


def test_old_mac_line_ends() -> None:
    rows = parse_csv(b"domain\ra.example.com\rb.example.com")
    assert [r.row for r in rows] == [2, 3]
    assert all(r.accepted for r in rows)


def test_columns_in_any_order_and_only_domain_required() -> None:
    rows = parse_csv(b"enable,domain\n1,a.example.com\n0,b.example.com\n")
    assert [r.domain.enable for r in rows if r.domain] == [True, False]
    rows = parse_csv(b"domain\na.example.com\n")
    assert rows[0].domain == ImportedDomain(
        Target("a.example.com", 443, False), (), None
    )  # no enable cell: the request decides


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("yes", True),
        ("YES", True),
        ("true", True),
        ("1", True),
        ("no", False),
        ("False", False),
        ("0", False),
        ("", DEFAULT_ENABLE),
        (" yes ", True),
    ],
)
def test_enable_words(cell: str, expected: bool) -> None:
    (row,) = parse_csv(f"domain,enable\na.example.com,{cell}\n".encode())
    assert row.domain is not None and row.domain.enable is expected


def test_contacts_cell() -> None:
    data = (
        HEADER + 'a.example.com,,"ops; alice ;",\nb.example.com,,ops\uff1bbob\uff1b42,\n'
    )  # full-width semicolons
    rows = parse_csv(data.encode())
    assert [r.domain.contacts for r in rows if r.domain] == [("ops", "alice"), ("ops", "bob", "42")]


def test_quoted_cells_and_trailing_unnamed_columns() -> None:
    rows = parse_csv(b'"domain","port",,\n"a.example.com","8443",,\n')
    assert rows[0].domain == ImportedDomain(Target("a.example.com", 8443, False), (), None)


def test_internationalised_names_in_utf8() -> None:
    (row,) = parse_csv("domain\nbücher.de\n".encode())
    assert row.domain is not None and row.domain.target.host == "xn--bcher-kva.de"


def test_plain_http_port_is_accepted_with_a_warning() -> None:
    (row,) = parse_csv(b"domain,port\na.example.com,8080\n")
    assert row.accepted
    assert [w.code for w in row.warnings] == ["plain_http_port"]


# --- rejected rows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (",443,ops,yes", {("domain", "required")}),
        ("*.example.com,,,", {("domain", "wildcard")}),
        ("https://example.com/,,,", {("domain", "url")}),
        ("example.id,,,", {("domain", "unsupported_tld")}),
        ("a.example.com,0,,", {("port", "port_range")}),
        ("a.example.com,https,,", {("port", "port_syntax")}),
        ("a.example.com:8443,443,,", {("port", "port_conflict")}),
        ("a.example.com,,a;b;c;d,", {("contacts", "too_many")}),
        ("a.example.com,,a;a,", {("contacts", "duplicate")}),
        ("a.example.com,,,maybe", {("enable", "boolean")}),
        ("a.example.com,,,,extra", {("row", "extra_value")}),
        (
            "*.example.com,0,a;a,maybe",
            {("domain", "wildcard"), ("port", "port_range")}
            | {("contacts", "duplicate"), ("enable", "boolean")},
        ),
    ],
)
def test_rejected_rows(line: str, expected: set[tuple[str, str]]) -> None:
    (row,) = parse_csv((HEADER + line + "\n").encode())
    assert row.row == 2
    assert row.domain is None
    assert _rules(row) == expected


def test_duplicates_are_rejected_on_the_later_row() -> None:
    data = HEADER + "a.example.com,,,\nA.EXAMPLE.com.,443,,\na.example.com,8443,,\n"
    rows = parse_csv(data.encode())
    assert [r.accepted for r in rows] == [True, False, True]
    assert _rules(rows[1]) == {("domain", "duplicate")}
    assert "line 2" in rows[1].errors[0].description


def test_a_rejected_row_does_not_block_a_later_good_repeat() -> None:
    data = HEADER + "a.example.com,,,maybe\na.example.com,,,yes\n"
    assert [r.accepted for r in parse_csv(data.encode())] == [False, True]


def test_csv_row_invariant() -> None:
    with pytest.raises(ValueError):
        CsvRow(2, None)
    with pytest.raises(ValueError):
        CsvRow(
            2,
            ImportedDomain(Target("a.com", 443, False), (), False),
            errors=(FieldViolation("domain", "r", "d"),),
        )


# --- whole-file errors --------------------------------------------------------------------


def test_too_large() -> None:
    data = (HEADER + "a.example.com\n").encode()
    assert parse_csv(data, max_bytes=len(data))
    error = _file_error(data, max_bytes=len(data) - 1)
    assert error.rule == "too_large"


def test_too_many_rows() -> None:
    data = (HEADER + "".join(f"d{i}.example.com\n" for i in range(3))).encode()
    assert len(parse_csv(data, max_rows=3)) == 3
    assert _file_error(data, max_rows=2).rule == "too_many_rows"


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "no_header"),
        (b"\n\n# just a comment\n", "no_header"),
        ("domain\nbücher.de\n".encode("latin-1"), "encoding"),
        ("domain\n例え.jp\n".encode("gbk"), "encoding"),
        ("domain\nexample.com\n".encode("utf-16"), "encoding"),
        (b'domain\n"a.example.com\n', "malformed"),
        (b'domain\n"a"b.example.com\n', "malformed"),
        (b"www.example.com,443\n", "unknown_column"),
        (b"domain,region\n", "unknown_column"),
        (b"domain,domain\n", "duplicate_column"),
        (b"port,enable\n", "missing_column"),
        (b"domain;port;contacts;enable\n", "unknown_column"),
        (b"domain," + b"x," * 70 + b"\n", "unknown_column"),
    ],
)
def test_whole_file_errors(data: bytes, rule: str) -> None:
    error = _file_error(data)
    assert rule in {v.rule for v in error.violations}


def test_whole_file_messages_say_what_to_do() -> None:
    assert "CSV UTF-8" in _file_error("domain\nbücher.de\n".encode("latin-1")).message
    assert "comma" in _file_error(b"domain;port\n").message
    assert "domain,port,contacts,enable" in _file_error(b"foo\n").message
    assert "certwatch domains template" in _file_error(b"").message


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        parse_csv(b"domain\n", max_rows=0)


# --- properties ---------------------------------------------------------------------------

_LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=20)


@st.composite
def _valid_rows(draw: st.DrawFn) -> list[tuple[str, str, str, str]]:
    hosts = draw(st.lists(_LABEL, min_size=0, max_size=30, unique=True))
    rows = []
    for host in hosts:
        port = draw(st.sampled_from(["", "443", "8443", "9443"]))
        contacts = ";".join(draw(st.lists(_LABEL, max_size=3, unique=True)))
        enable = draw(st.sampled_from(["", "yes", "no", "TRUE", "0"]))
        rows.append((f"{host}.example.com", port, contacts, enable))
    return rows


@settings(max_examples=60, deadline=None)
@given(_valid_rows(), st.sampled_from(["\n", "\r\n"]), st.booleans(), st.booleans())
def test_n_valid_rows_give_n_accepted_results(
    rows: list[tuple[str, str, str, str]], newline: str, bom: bool, blank_lines: bool
) -> None:
    lines = ["domain,port,contacts,enable"]
    for row in rows:
        lines.append(",".join(row))
        if blank_lines:
            lines.append("")
    data = ("\ufeff" if bom else "") + newline.join(lines) + newline
    results = parse_csv(data.encode())
    assert len(results) == len(rows)
    assert all(result.accepted for result in results)
    assert [r.row for r in results] == sorted({r.row for r in results})
    assert [r.domain.target.host for r in results if r.domain] == [row[0] for row in rows]


_CSVISH = st.lists(
    st.sampled_from(
        [
            *("domain", "port", "contacts", "enable", ",", "\n", "\r\n", '"', "#", ";"),
            *("a.example.com", "443", "yes", "x", "\ufeff", "*", " ", "ü", "\x00", "\r"),
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_CSVISH.map(str.encode), st.binary(max_size=200)))
def test_parse_csv_raises_only_validation_error(data: bytes) -> None:
    try:
        rows = parse_csv(data)
    except ValidationError as error:
        assert error.violations and all(v.field == "file" for v in error.violations)
        return
    for row in rows:
        assert (row.domain is None) != (not row.errors)
        assert row.row >= 2
