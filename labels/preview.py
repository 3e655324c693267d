"""Single-label previews: SVG composed by hand, PNG drawn with Pillow (reportlab's own dependency).

reportlab's renderPM needs the optional rlPyCairo backend, so it is not used; both previews draw
the same placed label as the PDF (QR runs, Helvetica-metric text placement, logo).
"""

from __future__ import annotations

import base64
import io
import mimetypes
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, ImageDraw, ImageFont

from .layouts import Layout
from .model import LabelData
from .place import PT_MM, PlacedLabel, place_label, place_qr, text_width
from .qr import QrSymbol, encode

# Liberation Sans has Helvetica's metrics; other fonts are scaled down to the Helvetica width.
_FONTS = {False: ("LiberationSans-Regular.ttf", "DejaVuSans.ttf"),
          True: ("LiberationSans-Bold.ttf", "DejaVuSans-Bold.ttf")}


def _prepare(data: LabelData, layout: Layout, dpi: int | None) -> tuple[QrSymbol, PlacedLabel]:
    symbol = encode(data.url, layout.qr.error, layout.qr.compact)
    qr = place_qr(layout, layout.fit(symbol.plan, dpi), dpi or layout.dpi)
    return symbol, place_label(layout, data, qr)


def render_svg(data: LabelData, layout: Layout) -> str:
    """An SVG of one label, in millimetre user units."""
    symbol, label = _prepare(data, layout, None)
    w, h = layout.label_width, layout.label_height
    path = "".join(f"M{x} {y}h{n}v1h-{n}z" for x, y, n in symbol.runs)
    q = label.qr
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}">',
        f'<rect width="{w}" height="{h}" fill="#fff"/>',
        f'<path transform="translate({q.x:.4f} {q.y:.4f}) scale({q.module:.5f})" fill="#000" '
        f'shape-rendering="crispEdges" d="{path}"/>',
    ]
    for t in label.texts:
        weight = ' font-weight="bold"' if t.bold else ""
        out.append(f'<text x="{t.x:.3f}" y="{t.y:.3f}" font-family="Helvetica, Arial, sans-serif" '
                   f'font-size="{t.size * PT_MM:.3f}"{weight}>{escape(t.text)}</text>')
    if label.logo is not None:
        lg = label.logo
        mime = mimetypes.guess_type(lg.path.name)[0] or "image/png"
        href = f"data:{mime};base64," + base64.b64encode(lg.path.read_bytes()).decode()
        out.append(f'<image x="{lg.x}" y="{lg.y}" width="{lg.width}" height="{lg.height}" '
                   f'preserveAspectRatio="xMinYMin meet" href={quoteattr(href)}/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_png(data: LabelData, layout: Layout, dpi: int = 300) -> bytes:
    """A PNG of one label at ``dpi`` (modules snap to whole pixels)."""
    symbol, label = _prepare(data, layout, dpi)
    px = dpi / 25.4
    image = Image.new("L", (round(layout.label_width * px), round(layout.label_height * px)), 255)
    draw = ImageDraw.Draw(image)
    q = label.qr
    for x, y, n in symbol.runs:
        x0, y0 = round((q.x + x * q.module) * px), round((q.y + y * q.module) * px)
        x1, y1 = round((q.x + (x + n) * q.module) * px), round((q.y + (y + 1) * q.module) * px)
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=0)
    for t in label.texts:
        size = t.size * PT_MM * px
        font = _font(t.bold, size)
        helvetica = text_width(t.text, t.font, t.size) * px
        if font.getlength(t.text) > helvetica > 0:
            font = _font(t.bold, size * helvetica / font.getlength(t.text))
        draw.text((t.x * px, t.y * px), t.text, fill=0, anchor="ls", font=font)
    if label.logo is not None:
        lg = label.logo
        logo = Image.open(lg.path).convert("RGBA")
        logo.thumbnail((round(lg.width * px), round(lg.height * px)))
        image.paste(logo.convert("L"), (round(lg.x * px), round(lg.y * px)), logo)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


def _font(bold: bool, size_px: float) -> ImageFont.FreeTypeFont:
    for name in _FONTS[bold]:
        try:
            return ImageFont.truetype(name, max(1, int(size_px)))
        except OSError:
            continue
    return ImageFont.load_default(size=max(1, int(size_px)))  # type: ignore[return-value]


def preview_bytes(data: LabelData, layout: Layout, fmt: str, dpi: int = 300) -> bytes:
    """A PNG or SVG preview of one label, as the file's bytes."""
    return render_svg(data, layout).encode("utf-8") if fmt == "svg" else render_png(data, layout, dpi)


def write_preview(data: LabelData, layout: Layout, out: str | Path, fmt: str, dpi: int = 300) -> None:
    """Write a PNG or SVG preview of one label to ``out``."""
    Path(out).write_bytes(preview_bytes(data, layout, fmt, dpi))
