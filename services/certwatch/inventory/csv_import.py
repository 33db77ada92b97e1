"""Batch import of domains from the CSV template ("Upload Domain Name" in the product).

Pure: takes the uploaded bytes, returns one result per data row. Problems with the file as
a whole (too big, not UTF-8, bad header, too many rows) raise :class:`ValidationError`
with field ``file``, because no row could be trusted; problems with one row are reported
on that row so the user can fix the file in one pass.

Rows are numbered by their line in the file as a text editor shows it (header and comment
lines count), which is what a user needs to find the row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from certwatch.inventory.contacts import MAX_CONTACTS_PER_DOMAIN, validate_domain_contacts
from certwatch.rules.targets import (
    FieldViolation,
    Target,
    TargetWarning,
    ValidationError,
    normalize_target,
    target_warnings,
    validate_port,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_ENABLE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "TEMPLATE",
    "CsvRow",
    "ImportedDomain",
    "parse_csv",
]

COLUMNS: tuple[str, ...] = ("domain", "port", "contacts", "enable")
_REQUIRED_COLUMNS: tuple[str, ...] = ("domain",)
#: An empty ``enable`` cell takes the request's choice (`domains add --enable`), which is
#: off unless asked for: enabling spends a unit, so it must be asked for somewhere.
DEFAULT_ENABLE = None
DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_ROWS = 10_000
_MAX_HEADER_CELLS = 64
_TRUE_WORDS = frozenset({"yes", "true", "1"})
_FALSE_WORDS = frozenset({"no", "false", "0"})
_CONTACT_SEPARATORS = re.compile("[;\uff1b]")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

TEMPLATE = """\
# certwatch domain import template. Save it as UTF-8 CSV (Excel: CSV UTF-8).
# Lines starting with # are ignored. Keep the header line below; add one domain per line.
#
# domain    Required. One domain name (www.example.com), internationalised name
#           (bücher.example) or IP address (203.0.113.7 or 2001:db8::1).
#           No wildcards (*.example.com), no https:// and no paths.
#           Names ending in .id are not supported.
# port      HTTPS port from 1 to 65535. Empty means 443.
#           80 and 8080 usually serve plain HTTP and are flagged.
# contacts  Up to 3 alert contact names or ids separated by ; (ops;alice). Empty means none.
# enable    yes/no, true/false or 1/0. Empty: as the import asks (--enable), else no.
#           Enabling starts the 365-day service period and uses one unit of quota,
#           which is not refunded.
#
# The two lines after the header are examples: remove their leading "# " to use them.
domain,port,contacts,enable
# www.example.com,443,ops;alice,yes
# shop.example.com,8443,,no
"""


@dataclass(frozen=True, slots=True)
class ImportedDomain:
    """The accepted content of one row, ready to become an add-domain command."""

    target: Target
    contacts: tuple[str, ...]
    enable: bool | None  # None: the cell was empty (the request's `enable` decides)


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row: accepted (``domain`` set) or rejected (``errors`` set), never both."""

    row: int
    domain: ImportedDomain | None
    warnings: tuple[TargetWarning, ...] = ()
    errors: tuple[FieldViolation, ...] = ()
    given: str = field(default="", compare=False)  # the row's domain cell as written: what a rejection names

    def __post_init__(self) -> None:
        if (self.domain is None) == (not self.errors):
            raise ValueError("a CsvRow has either a domain or errors")

    @property
    def accepted(self) -> bool:
        return self.domain is not None


def parse_csv(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_rows: int = DEFAULT_MAX_ROWS
) -> list[CsvRow]:
    """Parse an uploaded template into per-row results.

    Accepts a UTF-8 BOM (Excel writes one), CRLF or LF line ends, blank lines, ``#``
    comment lines, header names in any case and columns in any order. A file with a header
    and no data rows gives ``[]``. Repeats of an accepted target are rejected on the later
    row. Raises :class:`ValidationError` (field ``file``) for whole-file problems.
    """
    if max_bytes < 1 or max_rows < 1:
        raise ValueError("max_bytes and max_rows must be positive")
    if len(data) > max_bytes:
        raise ValidationError(
            "file",
            "too_large",
            f"the file is {len(data)} bytes, more than {max_bytes}; split it into smaller files",
        )
    records = _records(_decode(data))
    header: dict[int, str] | None = None
    results: list[CsvRow] = []
    first_seen: dict[Target, int] = {}
    for line, cells in records:
        if header is None:
            header = _header(cells)
            continue
        if len(results) == max_rows:
            raise ValidationError(
                "file",
                "too_many_rows",
                f"the file has more than {max_rows} data rows; split it into smaller files",
            )
        results.append(_row(line, cells, header, first_seen))
    if header is None:
        raise ValidationError(
            "file",
            "no_header",
            f"the file has no header line; it must start with {','.join(COLUMNS)}"
            " (run 'certwatch domains template' for a template)",
        )
    return results


def _decode(data: bytes) -> str:
    if data.startswith(_UTF16_BOMS):
        raise ValidationError(
            "file",
            "encoding",
            "the file is UTF-16 (Excel 'Unicode Text'); save it as 'CSV UTF-8' instead",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(
            "file",
            "encoding",
            f"the file is not UTF-8 (invalid byte at offset {error.start}); save it as"
            " 'CSV UTF-8' (files in GBK or other local encodings are not supported)",
        ) from None


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, cells) for each non-blank, non-comment record.

    Comments are blanked per physical line before CSV parsing so a stray quote in a
    comment cannot swallow the following lines; blanking (not deleting) keeps numbering.
    Strict quoting turns an unbalanced quote into a clear error instead of rows that
    silently vanish into one multi-line cell.
    """
    lines = [
        "\n" if line.lstrip().startswith("#") else line + "\n"
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ]
    reader = csv.reader(lines, strict=True)
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as error:
        raise ValidationError(
            "file",
            "malformed",
            f"the file cannot be read as CSV near line {reader.line_num} ({error});"
            ' check for unbalanced double quotes (")',
        ) from None


def _header(cells: list[str]) -> dict[int, str]:
    """Map column positions to known names; empty header cells are tolerated (Excel pads)."""
    if len(cells) > _MAX_HEADER_CELLS:
        raise ValidationError(
            "file", "unknown_column", f"the header has {len(cells)} columns; expected {COLUMNS}"
        )
    names = [cell.strip().lower() for cell in cells]
    violations: list[FieldViolation] = []
    for name in names:
        if name and name not in COLUMNS:
            hint = (
                "; the file seems to use ';' or tabs between columns, save it comma-separated"
                if any(column in name for column in COLUMNS) and (";" in name or "\t" in name)
                else ""
            )
            violations.append(
                FieldViolation(
                    "file",
                    "unknown_column",
                    f"unknown column {name[:64]!r}; the first line must be the header"
                    f" {','.join(COLUMNS)}{hint}",
                )
            )
    for name in COLUMNS:
        if names.count(name) > 1:
            violations.append(FieldViolation("file", "duplicate_column", f"column {name!r} appears twice"))
    violations.extend(
        FieldViolation("file", "missing_column", f"the header has no {name!r} column")
        for name in _REQUIRED_COLUMNS
        if name not in names
    )
    if violations:
        raise ValidationError.from_violations(violations)
    return {position: name for position, name in enumerate(names) if name}


def _row(line: int, cells: list[str], header: dict[int, str], first_seen: dict[Target, int]) -> CsvRow:
    values = {name: "" for name in COLUMNS}
    violations: list[FieldViolation] = []
    for position, cell in enumerate(cells):
        if position in header:
            values[header[position]] = cell.strip()
        elif cell.strip():
            violations.append(
                FieldViolation(
                    "row",
                    "extra_value",
                    f"value in column {position + 1}, which has no header; quote values that"
                    ' contain commas ("a,b") or remove the extra value',
                )
            )
    target = _target(values["domain"], values["port"], violations)
    contacts = _contacts(values["contacts"], violations)
    enable = _enable(values["enable"], violations)
    if target is not None and not violations:
        earlier = first_seen.setdefault(target, line)
        if earlier != line:
            violations.append(
                FieldViolation(
                    "domain",
                    "duplicate",
                    f"{target} is already on line {earlier}; remove the repeat",
                )
            )
    if violations or target is None:
        return CsvRow(line, None, errors=tuple(violations), given=values["domain"])
    return CsvRow(
        line, ImportedDomain(target, contacts, enable), target_warnings(target), given=values["domain"]
    )


def _target(domain: str, port: str, violations: list[FieldViolation]) -> Target | None:
    if not domain:
        violations.append(
            FieldViolation("domain", "required", "the domain cell is empty; enter a domain name")
        )
        return None
    try:
        checked_port = validate_port(port) if port else None
    except ValidationError as error:
        violations.extend(error.violations)
        checked_port = None
    try:
        return normalize_target(domain, port=checked_port)
    except ValidationError as error:
        violations.extend(error.violations)
        return None


def _contacts(cell: str, violations: list[FieldViolation]) -> tuple[str, ...]:
    refs = [ref for ref in _CONTACT_SEPARATORS.split(cell) if ref.strip()]
    if len(refs) > MAX_CONTACTS_PER_DOMAIN:
        # Checked here too so a huge cell is not echoed back ref by ref.
        violations.append(
            FieldViolation(
                "contacts",
                "too_many",
                f"{len(refs)} contacts given; a domain can have at most {MAX_CONTACTS_PER_DOMAIN}",
            )
        )
        return ()
    try:
        return validate_domain_contacts(refs)
    except ValidationError as error:
        violations.extend(error.violations)
        return ()


def _enable(cell: str, violations: list[FieldViolation]) -> bool | None:
    word = cell.lower()
    if not word:
        return DEFAULT_ENABLE
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    violations.append(
        FieldViolation(
            "enable",
            "boolean",
            f"enable must be yes/no, true/false or 1/0 (or empty), not {cell[:32]!r}",
        )
    )
    return DEFAULT_ENABLE
