"""PDF of many labels (sheets or rolls) with reportlab; each QR is drawn as vector rectangles.

Every horizontal run of dark modules is one ``re`` operator, written straight into the page's
content stream in module units under one scaling ``cm`` per symbol: no images, no per-module
rectangles, no reportlab shape objects (this is what makes it several times faster than
reportlab's own ``QrCodeWidget``, which builds a Group of shapes per code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from tagsmith import __version__

from .layouts import Layout
from .model import LabelData
from .place import PlacedLabel, PlacedQr, place_label, place_qr
from .qr import QrSymbol, encode_many


@dataclass(frozen=True)
class PdfResult:
    labels: int
    pages: int
    versions: tuple[str, ...]  # QR version-level designators used, e.g. ("4-M",)


def symbols_for(labels: Sequence[LabelData], layout: Layout, dpi: int | None = None,
                workers: int = 1) -> tuple[list[QrSymbol], dict[int, PlacedQr]]:
    """Encode every unit's QR and check that each version fits the layout before anything is drawn."""
    symbols = encode_many([d.url for d in labels], layout.qr.error, layout.qr.compact, workers)
    placed: dict[int, PlacedQr] = {}
    for symbol in symbols:
        if symbol.plan.version not in placed:
            placed[symbol.plan.version] = place_qr(layout, layout.fit(symbol.plan, dpi), dpi or layout.dpi)
    return symbols, placed


def render_pdf(labels: Sequence[LabelData], layout: Layout, out: str | Path | BinaryIO, *,
               dpi: int | None = None, workers: int = 1, outline: bool = False) -> PdfResult:
    """Write the labels to one PDF, filling sheets row by row (rolls: one label per page)."""
    symbols, placed = symbols_for(labels, layout, dpi, workers)
    canvas = Canvas(str(out) if isinstance(out, Path) else out,
                    pagesize=(layout.page_width * mm, layout.page_height * mm), pageCompression=1, invariant=1)
    canvas.setTitle(f"tagsmith labels ({layout.name})")
    canvas.setCreator(f"tagsmith {__version__}")
    pages = 0
    for i, (data, symbol) in enumerate(zip(labels, symbols, strict=True)):
        if i and i % layout.per_page == 0:
            canvas.showPage()
        if i % layout.per_page == 0:
            pages += 1
        x, y = layout.origin(i)
        label = place_label(layout, data, placed[symbol.plan.version])
        draw_label(canvas, layout, label, symbol, x, y, outline)
    if pages:
        canvas.showPage()
    canvas.save()
    return PdfResult(labels=len(labels), pages=pages,
                     versions=tuple(sorted({f"{s.plan.version}-{s.plan.error}" for s in symbols})))


def draw_label(canvas: Canvas, layout: Layout, label: PlacedLabel, symbol: QrSymbol,
               x: float, y: float, outline: bool = False) -> None:
    """Draw one placed label whose top-left corner is at (x, y) mm from the page's top-left."""
    top = layout.page_height - y  # mm from the page bottom, where PDF's y axis starts
    if outline:
        canvas.setLineWidth(0.2)
        canvas.setStrokeGray(0.6)
        canvas.rect(x * mm, (top - layout.label_height) * mm, layout.label_width * mm, layout.label_height * mm)
    canvas.addLiteral(qr_operators(symbol, (x + label.qr.x) * mm, (top - label.qr.y) * mm, label.qr.module * mm))
    for text in label.texts:
        canvas.setFont(text.font, text.size)
        canvas.drawString((x + text.x) * mm, (top - text.y) * mm, text.text)
    if label.logo is not None:
        logo = label.logo
        canvas.drawImage(str(logo.path), (x + logo.x) * mm, (top - logo.y - logo.height) * mm,
                         logo.width * mm, logo.height * mm, preserveAspectRatio=True, anchor="nw", mask="auto")


def qr_operators(symbol: QrSymbol, x: float, top: float, module: float) -> str:
    """PDF operators filling the symbol's runs; (x, top) is its first module's top-left, in points.

    The ``cm`` maps module units to points with y pointing down, so each run is ``x y w 1 re``.
    """
    body = "".join([f"{rx} {ry} {rw} 1 re\n" for rx, ry, rw in symbol.runs])
    return f"q 0 g {module:.4f} 0 0 {-module:.4f} {x:.3f} {top:.3f} cm\n{body}f Q"
