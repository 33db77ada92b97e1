"""HTML from Jinja2 templates, PDF from that HTML with WeasyPrint.

A PDF's dates (creation, modification) come from what the report covers, never from the
clock, and WeasyPrint derives the file identifier from the content: the same report is the
same bytes. CJK names render with Debian's `fonts-noto-cjk` (see the templates' CSS).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from certwatch.classifier.reports import blocks, charts, monthly
from certwatch.platform import templates

CHUNK = 64 * 1024

_ENV = templates.environment("certwatch.classifier.reports")
_ENV.globals.update(
    duration=monthly.duration, colour=charts.colour, blocks=blocks.blocks, heading=blocks.heading
)


def html(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def pdf(document: str) -> bytes:
    """The PDF of an HTML document whose `<meta name=dcterms.created>` fixes its dates."""
    import weasyprint  # loads Pango and fonts: only in a process that makes a PDF

    return bytes(weasyprint.HTML(string=document).write_pdf(uncompressed_pdf=False))


def stamp(value: datetime) -> str:
    """The metadata date form WeasyPrint reads from `dcterms.*`."""
    return value.replace(microsecond=0).isoformat()


def chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]
