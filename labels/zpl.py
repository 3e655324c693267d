"""ZPL II for Zebra printers: one ``^XA ... ^XZ`` label per unit, the QR encoded by the printer.

Quirks handled (docs/reference/labels-gs1.md §3): ``^BQ`` field data needs the two-letter
prefix ``<EC>A,`` (error level + automatic input mode) or the firmware eats the first characters;
``^BY`` is pinned before the ``^BQ`` because printers shift an ``^FO``-placed QR down by the bar
height it left behind; ``^CI28`` makes text fields UTF-8; ``^`` and ``~`` in data go through
``^FH`` hex escapes. Text uses ``^FT`` (baseline placement, like the PDF) with scalable font 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tagsmith import ConfigError

from .layouts import Layout, QrFit
from .model import LabelData
from .place import PT_MM, PlacedQr, place_label, place_qr
from .qr import QUIET_ZONE, QrPlan, plan

DPIS = (203, 300, 600)
MAX_MAGNIFICATION = 10  # ^BQ's c parameter: 1-10 dots per module
BY_HEIGHT = 10  # the ^BY bar height pinned before every ^BQ (the printer default)
# The ZD621 emulation in zplkit drew the ^FO-placed QR 9 dots low under ^BY...,10
# (docs/reference/labels-gs1.md §3.1); the field origin is raised by this much. Set per printer
# model if a calibration print disagrees.
BQ_SHIFT_DOTS = 9


@dataclass(frozen=True)
class ZplOptions:
    dpi: int = 203
    bq_shift_dots: int = BQ_SHIFT_DOTS


def dots(mm: float, dpi: int) -> int:
    """Millimetres to printer dots (dots = mm x dpi / 25.4)."""
    return int(round(mm * dpi / 25.4))


def magnification(layout: Layout, p: QrPlan, dpi: int) -> int:
    """Dots per module for a planned symbol (``^BQ`` c), after checking that it fits the layout."""
    fit = layout.fit(p, dpi)  # raises ConfigError with needed vs available mm
    return min(round(fit.module * dpi / 25.4), MAX_MAGNIFICATION)


def field_data(text: str) -> tuple[str, str]:
    """``(^FH or "", data)`` for a field: hex-escape ``^``, ``~`` (and then ``_``) only when present."""
    text = " ".join(text.splitlines())
    if "^" not in text and "~" not in text:
        return "", text
    escaped = text.replace("_", "_5F").replace("^", "_5E").replace("~", "_7E")
    return "^FH_", escaped


def render_zpl(labels: Iterable[LabelData], layout: Layout, dpi: int = 203,
               options: ZplOptions | None = None) -> Iterator[str]:
    """Yield one complete ZPL label (``^XA...^XZ``) per unit."""
    opts = options or ZplOptions(dpi=dpi)
    if opts.dpi not in DPIS:
        raise ConfigError(f"printer dpi {opts.dpi}: use one of {', '.join(map(str, DPIS))}")
    placed: dict[int, PlacedQr] = {}
    for data in labels:
        p = plan(data.url, layout.qr.error, layout.qr.compact)
        qr = placed.get(p.version)
        if qr is None:
            qr = placed[p.version] = _place(layout, p, opts.dpi)
        yield zpl_label(layout, data, p.text, p.error, qr, opts)


def _place(layout: Layout, p: QrPlan, dpi: int) -> PlacedQr:
    module = magnification(layout, p, dpi) * 25.4 / dpi
    return place_qr(layout, QrFit(module=module, side=module * (p.modules + 2 * QUIET_ZONE)), dpi)


def zpl_label(layout: Layout, data: LabelData, qr_text: str, error: str, qr: PlacedQr, opts: ZplOptions) -> str:
    """One label: page setup, the QR at its placed position, then the text lines."""
    d = opts.dpi
    mag = round(qr.module * d / 25.4)
    fh, qr_data = field_data(qr_text)
    parts = [
        f"^XA^CI28^PW{dots(layout.label_width, d)}^LL{dots(layout.label_height, d)}^LH0,0",
        f"^BY2,3,{BY_HEIGHT}",
        f"^FO{dots(qr.x, d)},{max(0, dots(qr.y, d) - opts.bq_shift_dots)}^BQN,2,{mag},{error},7{fh}^FD{error}A,{qr_data}^FS",
    ]
    for text in place_label(layout, data, qr).texts:
        height = max(10, round(text.size * PT_MM * d / 25.4))
        fh, value = field_data(text.text)
        parts.append(f"^FT{dots(text.x, d)},{dots(text.y, d)}^A0N,{height},{height}{fh}^FD{value}^FS")
    parts.append("^XZ")
    return "\n".join(parts) + "\n"
