"""The monthly report's two charts as plain geometry for an SVG template: no plotting library
(matplotlib would add ~80 MB for two charts), and the same numbers give the same bytes."""

from __future__ import annotations

import base64
import struct
import zlib
from bisect import insort
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

COLOURS = {"SECURE": "#1b5e20", "ABNORMAL": "#b71c1c", "ENABLE_FAILED": "#e65100", "ENABLING": "#0d47a1"}
OTHER = "#616161"
WIDTH, HEIGHT, MARGIN = 720, 220, 36
_MAX_STACK = 16


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    top: int  # the value at the top of the axis
    legend: tuple[tuple[str, str], ...]


def colour(status: str) -> str:
    return COLOURS.get(status, OTHER)


def status_per_day(days: Sequence[date], counts: Sequence[Counter[str]], statuses: Sequence[str]) -> Chart:
    """Stacked bars: how many domains held each status (longest that day), day by day."""
    top = max((sum(c.values()) for c in counts), default=0) or 1
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = plot_w / max(1, len(days))
    bars: list[Bar] = []
    for n, (day, counter) in enumerate(zip(days, counts, strict=True)):
        base: float = HEIGHT - MARGIN
        for status in statuses:
            if counter[status]:
                h = plot_h * counter[status] / top
                base -= h
                bars.append(Bar(round(MARGIN + n * step + 1, 2), round(base, 2), round(step - 2, 2),
                                round(h, 2), colour(status), f"{day}: {counter[status]} {status}"))  # fmt: skip
    ticks = tuple(Tick(round(MARGIN + (n + 0.5) * step, 2), str(d.day)) for n, d in enumerate(days))
    return Chart(WIDTH, HEIGHT, tuple(bars), ticks, top, tuple((s, colour(s)) for s in statuses))


@dataclass
class Timeline:
    """Certificates expiring in the `window` days after the month, folded one at a time: per
    day the count and the first `_MAX_STACK` labels (the table below the chart lists every
    one), so it is bounded however many domains expire."""

    window: int
    counts: Counter[int] = field(default_factory=Counter)
    labels: dict[int, list[str]] = field(default_factory=dict)

    def add(self, days: int, label: str) -> None:
        """`days`: whole days after the month's end."""
        self.counts[days] += 1
        kept = self.labels.setdefault(days, [])
        insort(kept, label)
        del kept[_MAX_STACK:]

    def chart(self) -> Chart:
        """A dot per certificate on a day axis, stacked when several expire the same day."""
        step = (WIDTH - 2 * MARGIN) / self.window
        dots = tuple(Bar(round(MARGIN + days * step, 2), HEIGHT - MARGIN - 10 - level * 9, 7, 7,
                         colour("ABNORMAL") if days < 30 else colour("ENABLE_FAILED"), label)
                     for days in sorted(self.labels) for level, label in enumerate(self.labels[days]))  # fmt: skip
        ticks = tuple(Tick(round(MARGIN + d * step, 2), f"+{d}d") for d in range(0, self.window + 1, 10))
        return Chart(WIDTH, HEIGHT, dots, ticks, max(self.counts.values(), default=0), ())


@dataclass(frozen=True, slots=True)
class Strip:
    """A domain's month as one box in the colour it held longest, with a box on top for each
    stretch in another colour (WeasyPrint's cost grows with boxes; gradients cost more still)."""

    base: str
    overlays: tuple[tuple[float, float, str], ...]  # (left %, width %, colour)


def strip(segments: Sequence[tuple[str | None, float]]) -> Strip:
    """`segments`: (status or None for unmonitored, share of the month), in order."""
    held: dict[str | None, float] = {}
    for status, share in segments:
        held[status] = held.get(status, 0.0) + share
    held[None] = held.get(None, 0.0) + max(0.0, 1.0 - sum(held.values()))
    base = max(held, key=lambda s: (held[s], s or ""))
    overlays, at = [], 0.0
    for status, share in segments:
        if status != base and share > 0:
            overlays.append((round(100 * at, 3), round(100 * share, 3), colour(status) if status else "#fff"))
        at += share
    if base is not None and at < 1.0:
        overlays.append((round(100 * at, 3), round(100 * (1.0 - at), 3), "#fff"))
    return Strip(colour(base) if base else "#fff", tuple(overlays))


STRIP_PX = 500  # a strip's width in pixels: its overlays are placed to 0.2% of the month (~1.5 h)
_LINE_PX = (False, True, True, True, False)  # a table line's pixel rows: the strip fills the middle 60%


def strips_png(strips: Sequence[Strip]) -> str:
    """A block's strips as one PNG, a data URL (a line of pixels per strip row, drawn without
    smoothing): WeasyPrint draws an SVG node by node (~0.3 ms a rectangle, and each is an
    element to parse and style), an image at once."""
    palette: dict[str, int] = {"#ffffff": 0}
    rows: list[bytes] = []
    for st in strips:
        row = bytearray([palette.setdefault(_hex6(st.base), len(palette))]) * STRIP_PX
        for left, width, fill in st.overlays:
            x0 = min(STRIP_PX - 1, round(left * STRIP_PX / 100))
            x1 = min(STRIP_PX, max(x0 + 1, round((left + width) * STRIP_PX / 100)))
            row[x0:x1] = bytes([palette.setdefault(_hex6(fill), len(palette))]) * (x1 - x0)
        rows += [bytes(row) if filled else bytes(STRIP_PX) for filled in _LINE_PX]
    header = struct.pack(">IIBBBBB", STRIP_PX, len(rows), 8, 3, 0, 0, 0)  # 8-bit indexed colour
    data = b"\x89PNG\r\n\x1a\n" + b"".join(
        _png_chunk(kind, body)
        for kind, body in ((b"IHDR", header), (b"PLTE", b"".join(bytes.fromhex(c[1:]) for c in palette)),
                           (b"IDAT", zlib.compress(b"".join(b"\0" + r for r in rows))), (b"IEND", b""))
    )  # fmt: skip
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _hex6(colour: str) -> str:
    return "#" + "".join(c * 2 for c in colour[1:]) if len(colour) == 4 else colour


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
