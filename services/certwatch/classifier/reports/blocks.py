"""Long report tables as blocks of monospaced lines: WeasyPrint's cost grows with boxes (a
table cell, a span, a line box), about a millisecond a cell, so a 1,000-domain month laid out
one cell per value took 34 s. Here a table's row is one line of padded fields (the variable
ones last), a block of rows is one preformatted text beside, for the domains, one SVG of
their strips; every line has the same fixed height, so strips and lines stay level."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

ROWS_PER_BLOCK = 30  # 120 mm: a block fits a page under its heading, and moves whole


@dataclass(frozen=True, slots=True)
class Field:
    title: str
    width: int  # columns (a wide CJK character takes two)
    right: bool = False


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def line(fields: Sequence[Field], values: Sequence[str]) -> str:
    """One row: each value padded to its field (the last one not), a value never two lines."""
    out = []
    for n, (f, value) in enumerate(zip(fields, values, strict=True)):
        value = value.replace("\n", " ")
        pad = " " * max(0, f.width - width(value))
        out.append(value if n == len(fields) - 1 else (pad + value if f.right else value + pad))
    return "  ".join(out).rstrip()


def heading(fields: Sequence[Field]) -> str:
    return line(fields, [f.title for f in fields])


def blocks(
    rows: Iterable[tuple[object, str]], size: int = ROWS_PER_BLOCK
) -> Iterator[tuple[list[object], str]]:
    """(extras, lines) `size` rows at a time: `rows` are (an extra per row, e.g. a strip, the
    row's line)."""
    extras: list[object] = []
    text: list[str] = []
    for extra, row in rows:
        extras.append(extra)
        text.append(row)
        if len(text) == size:
            yield extras, "\n".join(text)
            extras, text = [], []
    if text:
        yield extras, "\n".join(text)
