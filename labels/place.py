"""Where everything lands on one label: shared by the PDF, ZPL, PNG and SVG writers.

Positions are millimetres from the label's top-left corner; text is placed by its baseline and
shrunk (down to ``MIN_TEXT_PT``, then cut with an ellipsis) to stay inside its line's width, using
Helvetica metrics so every output agrees on the layout. :func:`text_width` is the package's one
source of those metrics (reportlab's Helvetica AFM widths): the PNG preview sizes its fonts by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportlab.pdfbase.pdfmetrics import stringWidth

from .layouts import Layout, Logo, QrFit, TextLine
from .model import LabelData
from .qr import QUIET_ZONE

PT_MM = 25.4 / 72
MIN_TEXT_PT = 4.0
RIGHT_MARGIN_MM = 1.0


@dataclass(frozen=True)
class PlacedText:
    text: str
    x: float  # left edge of the text, mm
    y: float  # baseline, mm
    size: float  # points
    bold: bool

    @property
    def font(self) -> str:
        return "Helvetica-Bold" if self.bold else "Helvetica"


@dataclass(frozen=True)
class PlacedQr:
    x: float  # top-left of the symbol's first module (inside the quiet zone), mm
    y: float
    module: float  # mm


@dataclass(frozen=True)
class PlacedLabel:
    qr: PlacedQr
    texts: tuple[PlacedText, ...]
    logo: Logo | None


def text_width(text: str, font: str, size: float) -> float:
    """Width in mm of ``text`` in a standard PDF font (Helvetica, Helvetica-Bold) at ``size`` points."""
    return stringWidth(text, font, size) * PT_MM


def place_qr(layout: Layout, fit: QrFit, dpi: int | None = None) -> PlacedQr:
    """Centre the symbol (with its quiet zone) in the layout's QR area, on whole dots when ``dpi`` is set."""
    offset = (layout.qr.size - fit.side) / 2
    if dpi:
        dot = 25.4 / dpi
        offset = int(offset / dot) * dot
    return PlacedQr(x=layout.qr.x + offset + QUIET_ZONE * fit.module,
                    y=layout.qr.y + offset + QUIET_ZONE * fit.module, module=fit.module)


def place_label(layout: Layout, data: LabelData, qr: PlacedQr) -> PlacedLabel:
    """Place one unit's label: the QR where the fit put it, text lines filled from the unit's fields."""
    texts = tuple(t for t in (_place_text(layout, line, data) for line in layout.text) if t is not None)
    return PlacedLabel(qr=qr, texts=texts, logo=layout.logo)


def _place_text(layout: Layout, line: TextLine, data: LabelData) -> PlacedText | None:
    values = {f: data.field(f) for f in line.fields}
    if line.fields and all(v is None for v in values.values()):
        return None
    text = " ".join(line.text.format_map({k: v or "" for k, v in values.items()}).split())
    font = "Helvetica-Bold" if line.bold else "Helvetica"
    room = line.width if line.width is not None else layout.label_width - line.x - RIGHT_MARGIN_MM
    size = line.size
    width = text_width(text, font, size)
    if width > room:
        size = max(MIN_TEXT_PT, size * room / width)
        text = _cut(text, font, size, room)
        width = text_width(text, font, size)
    x = line.x + (room - width) / 2 if line.align == "center" else line.x
    return PlacedText(text=text, x=x, y=line.y, size=size, bold=line.bold)


def _cut(text: str, font: str, size: float, room: float) -> str:
    """Shorten text with an ellipsis until it fits (only when the minimum size is not enough)."""
    if text_width(text, font, size) <= room:
        return text
    keep, over = 1, len(text)  # the longest prefix that fits with "...", by bisection (widths only grow)
    while over - keep > 1:
        mid = (keep + over) // 2
        if text_width(text[:mid] + "...", font, size) > room:
            over = mid
        else:
            keep = mid
    return text[:keep].rstrip() + "..."

