"""HTML from Jinja2 templates, PDF from that HTML with WeasyPrint.

A PDF's dates (creation, modification) come from what the report covers, never from the
clock, and WeasyPrint derives the file identifier from the content: the same report is the
same bytes. CJK names render with Debian's `fonts-noto-cjk` (see the templates' CSS).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certwatch.classifier.reports import blocks, charts, monthly
from certwatch.platform import templates

CHUNK = 64 * 1024

_ENV = templates.environment("certwatch.classifier.reports")
_ENV.globals.update(
    duration=monthly.duration,
    colour=charts.colour,
    blocks=blocks.blocks,
    heading=blocks.heading,
    strips_png=charts.strips_png,
)


def html(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)


def pdf(document: str) -> bytes:
    """The PDF of an HTML document whose `<meta name=dcterms.created>` fixes its dates."""
    import weasyprint  # loads Pango and fonts: only in a process that makes a PDF

    return bytes(weasyprint.HTML(string=document).write_pdf(uncompressed_pdf=False))


class Pages:
    """One PDF from HTML documents laid out one after another, each painted and dropped before
    the next: WeasyPrint keeps a laid-out page (~1 MB, its line boxes with their Pango
    layouts) until the PDF is written, so `Document.copy` over every page of 10,000 domains
    would hold ~650 MB; here memory is one document's layout plus the painted content
    streams. The pages share one font configuration, so each font is embedded once, subset
    to every glyph used. What WeasyPrint's `generate_pdf` does for a plain PDF (no links,
    forms, tags, attachments or PDF variant; the monthly report uses none), page by page.

    `overlay` paints further documents' pages over the pages already painted, in order: the
    footers, once the number of pages is known (a document's own `counter(pages)` counts
    only its pages). Metadata (title, dates) is the first document's."""

    SCALE = 0.75  # 72 PDF points an inch / 96 CSS pixels

    def __init__(self) -> None:
        import pydyf
        from tinycss2.color5 import D50, D65
        from weasyprint.text.fonts import FontConfiguration

        self._fonts_config = FontConfiguration()
        self._pdf = pydyf.PDF()
        self._fonts: dict[Any, Any] = {}
        self._images: dict[str, Any] = {}
        lab = {name: pydyf.Array(("/Lab", pydyf.Dictionary({"WhitePoint": pydyf.Array(white),
                                                             "Range": pydyf.Array((-125, 125, -125, 125))})))
               for name, white in (("lab-d50", D50), ("lab-d65", D65))}  # fmt: skip
        colour_space = pydyf.Dictionary(lab)
        self._pdf.add_object(colour_space)
        self._resources = pydyf.Dictionary({"ExtGState": pydyf.Dictionary(), "XObject": pydyf.Dictionary(),
                                            "Pattern": pydyf.Dictionary(), "Shading": pydyf.Dictionary(),
                                            "ColorSpace": colour_space.reference})  # fmt: skip
        self._pdf.add_object(self._resources)
        self._streams: list[Any] = []
        self._outline: list[Any] = []  # per page: what the outline needs (bookmarks, height)
        self._metadata: Any = None

    def __len__(self) -> int:
        return len(self._streams)

    def _render(self, document: str) -> Any:
        import weasyprint

        rendered = weasyprint.HTML(string=document).render(font_config=self._fonts_config)
        if self._metadata is None:
            self._metadata = rendered.metadata
        return rendered

    def add(self, document: str) -> int:
        """Lay out and paint `document` after the pages so far; its number of pages."""
        import pydyf
        from weasyprint.pdf.stream import Stream

        pages = self._render(document).pages
        for page in pages:
            width, height = page.width * self.SCALE, page.height * self.SCALE
            stream = Stream(self._fonts, (0, 0, page.width, page.height), self._resources, self._images,
                            None, {}, None, compress=True)  # fmt: skip
            stream.transform(d=-1, f=height)
            self._pdf.add_object(stream)
            self._pdf.add_page(pydyf.Dictionary({
                "Type": "/Page", "Parent": self._pdf.pages.reference, "MediaBox": pydyf.Array([0, 0, width, height]),
                "Contents": stream.reference, "Resources": self._resources.reference,
            }))  # fmt: skip
            page.paint(stream, self.SCALE)
            self._streams.append(stream)
            self._outline.append(_OutlinePage(page.bookmarks, page.height))
        return len(pages)

    def overlay(self, document: str, first: int) -> int:
        """Paint `document`'s pages over the pages painted so far from page `first` (0-based)."""
        pages = self._render(document).pages
        for stream, page in zip(self._streams[first:], pages, strict=False):
            page.paint(stream, self.SCALE)
        return len(pages)

    def finish(self) -> bytes:
        import pydyf
        import weasyprint
        from weasyprint.pdf import _use_references, _w3c_date_to_pdf
        from weasyprint.pdf.anchors import add_outlines
        from weasyprint.pdf.fonts import build_fonts_dictionary

        pdf, meta = self._pdf, self._metadata
        outline = weasyprint.Document(self._outline, meta, None, self._fonts_config, {}, None)
        add_outlines(pdf, outline.make_bookmark_tree(self.SCALE, transform_pages=True))
        pdf.info["Producer"] = pydyf.String(f"WeasyPrint {weasyprint.VERSION}")
        for key, value in (("Title", meta.title), ("Creator", meta.generator),
                           ("CreationDate", _w3c_date_to_pdf(meta.created, "created")),
                           ("ModDate", _w3c_date_to_pdf(meta.modified, "modified"))):  # fmt: skip
            if value:
                pdf.info[key] = pydyf.String(value)
        if meta.lang:
            pdf.catalog["Lang"] = pydyf.String(meta.lang)
        fonts = build_fonts_dictionary(pdf, self._fonts, True, True, weasyprint.DEFAULT_OPTIONS)
        pdf.add_object(fonts)
        self._resources["Font"] = fonts.reference
        _use_references(pdf, self._resources, self._images, {})
        out = io.BytesIO()
        pdf.write(out, None, None, True)
        return out.getvalue()


@dataclass(frozen=True, slots=True)
class _OutlinePage:
    """What `Document.make_bookmark_tree` reads of a page, kept after its layout is dropped."""

    bookmarks: list[Any]
    height: float


def stamp(value: datetime) -> str:
    """The metadata date form WeasyPrint reads from `dcterms.*`."""
    return value.replace(microsecond=0).isoformat()


def chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]
