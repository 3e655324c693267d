"""Prove a label PDF: rasterise it (poppler's pdftoppm), decode every QR (zbar's zbarimg), compare.

Every expected unit must appear exactly once and every decoded URL must be a known one. With the
layout known, each page is rasterised once and every label cell's QR area is cropped and decoded
on its own: zbar finds a lone code in a small image reliably and fast, where on a whole 24-up
sheet it misses some (measured: 1 of 30 on a 5160 page at 300 dpi, a different one at 200 or 600
dpi) and spends most of its time scanning empty paper. Only pages where a cell gave nothing
while something is still missing are decoded again whole, at other resolutions, merged per page
and counting each URL as often as the best pass saw it.
"""

from __future__ import annotations

import base64
import math
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagsmith import ConfigError, NotFoundError

from . import MissingToolError
from .layouts import Layout

TOOLS = {"pdftoppm": "poppler-utils", "pdfinfo": "poppler-utils", "zbarimg": "zbar-tools"}
PASSES = (("-r", "300"), ("-r", "400", "-aa", "no", "-aaVector", "no"),
          ("-r", "200", "-aa", "no", "-aaVector", "no"), ("-r", "150"))
PAGES_PER_CHUNK = 100
CELL_DPI = (150, 300)  # cell pass: resolution range; within it, enough for PX_PER_MODULE pixels per module
PX_PER_MODULE = 5
CELL_MARGIN_MM = 1.0  # around the QR area (which already holds the 4-module quiet zone)
LABELS_PER_CHUNK = 96  # cell pass: pages rasterised per pdftoppm call, in labels (progress moves per chunk)

#: Called as pages are decoded: (pages done, pages in the pass, what the pass is).
Progress = Callable[[int, int, str], None]
_ZBAR_NS = "{http://zbar.sourceforge.net/2008/barcode}"
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)$", re.DOTALL)


@dataclass(frozen=True)
class CheckReport:
    """What the PDF holds compared with what it should hold (serials name the units)."""

    pages: int
    expected: int
    decoded: int
    found: tuple[str, ...]
    missing: tuple[str, ...]
    duplicates: dict[str, list[int]] = field(default_factory=dict)  # serial -> pages it was seen on
    unknown: dict[str, list[int]] = field(default_factory=dict)  # decoded text -> pages
    passes: int = 1

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.unknown)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "pages": self.pages, "expected": self.expected, "decoded": self.decoded,
                "found": len(self.found), "missing": list(self.missing), "duplicates": self.duplicates,
                "unknown": self.unknown, "passes": self.passes}


def normalise_url(url: str) -> str:
    """Lower-case the scheme and host (case-insensitive per RFC 3986); the path stays as it is."""
    match = _URL.match(url.strip())
    if not match:
        return url.strip()
    scheme, host, rest = match.groups()
    return scheme.lower() + host.lower() + rest


def require_tool(name: str) -> str:
    """Path of an external tool, or a one-line error naming the Debian package to install."""
    path = shutil.which(name)
    if path is None:
        package = TOOLS.get(name, name)
        raise MissingToolError(f"{name} not found: install the Debian package {package} (apt-get install {package})")
    return path


def check_pdf(pdf_path: str | Path, expected: Mapping[str, str], layout: Layout | None = None,
              progress: Progress | None = None) -> CheckReport:
    """Decode every QR in a label PDF and compare with ``expected`` (URL -> serial).

    With ``layout`` (the one the PDF was printed with) each label cell is decoded on its own
    first; whole pages are decoded only where that left something missing.
    """
    pdf = Path(pdf_path)
    if not pdf.exists():
        raise NotFoundError(f"label PDF {pdf} does not exist")
    if not pdf.is_file():
        raise ConfigError(f"{pdf} is not a file: give the label PDF")
    with open(pdf, "rb") as f:
        if f.read(5) != b"%PDF-":
            raise ConfigError(f"{pdf} is not a PDF: labels check reads the label sheet PDF (labels print --format pdf)")
    for tool in TOOLS:
        require_tool(tool)
    wanted = {normalise_url(u): s for u, s in expected.items()}
    pages = page_count(pdf)
    seen: dict[int, Counter[str]] = {}
    passes = 0
    retry = list(range(1, pages + 1))
    if layout is not None:
        passes += 1
        seen, blank = decode_cells(pdf, pages, layout, progress, cell_dpi(layout, list(expected)))
        retry = sorted(page for page, cells in blank.items() if cells)  # a cell that gave nothing: missed or empty
    for options in PASSES:
        if not retry or set(wanted) <= {u for counts in seen.values() for u in counts}:
            break
        passes += 1
        _merge(seen, decode_pages(pdf, pages, options, retry, progress))
    return _report(pages, wanted, seen, passes)


def cell_dpi(layout: Layout, urls: list[str]) -> int:
    """Rasterising resolution for the cell pass: PX_PER_MODULE pixels for the smallest module expected.

    The longest URL needs the largest QR version, so the smallest modules in this layout; more
    pixels than zbar needs only cost time (an A4 page at 300 dpi is 8.7 million pixels).
    """
    low, high = CELL_DPI
    if not urls:
        return high
    from .qr import plan

    try:
        module = layout.fit(plan(max(urls, key=len)), layout.dpi).module
    except ConfigError:  # the URL does not fit this layout: then the PDF was not printed with it either
        return high
    return max(low, min(high, math.ceil(25.4 * PX_PER_MODULE / module)))


def decode_cells(pdf: Path, pages: int, layout: Layout, progress: Progress | None = None,
                 dpi: int = CELL_DPI[1]) -> tuple[dict[int, Counter[str]], dict[int, int]]:
    """Decode each label cell's QR area on its own: (URLs per page, cells per page that gave nothing)."""
    per_chunk = max(1, LABELS_PER_CHUNK // layout.per_page)
    chunks = [(first, min(first + per_chunk - 1, pages)) for first in range(1, pages + 1, per_chunk)]
    seen: dict[int, Counter[str]] = {}
    blank: dict[int, int] = {}
    done = 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = pool.map(lambda c: _decode_cell_chunk(pdf, c[0], c[1], layout, dpi), chunks)
        for (first, last), (found, empty) in zip(chunks, results, strict=True):
            seen.update(found)
            blank.update(empty)
            done += last - first + 1
            if progress:
                progress(done, pages, "label cells")
    return seen, blank


def cell_boxes(layout: Layout, dpi: int) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (left, top, right, bottom) of each cell's QR area on a page rasterised at ``dpi``."""
    px = dpi / 25.4
    boxes = []
    for index in range(layout.per_page):
        x, y = layout.origin(index)
        left, top = x + layout.qr.x - CELL_MARGIN_MM, y + layout.qr.y - CELL_MARGIN_MM
        side = layout.qr.size + 2 * CELL_MARGIN_MM
        boxes.append((max(0, round(left * px)), max(0, round(top * px)),
                      round((left + side) * px), round((top + side) * px)))
    return boxes


def _decode_cell_chunk(pdf: Path, first: int, last: int, layout: Layout,
                       dpi: int) -> tuple[dict[int, Counter[str]], dict[int, int]]:
    from PIL import Image  # Pillow comes with reportlab

    with tempfile.TemporaryDirectory(prefix="tagsmith-check-") as tmp:
        _run([require_tool("pdftoppm"), "-r", str(dpi), "-gray", "-f", str(first), "-l", str(last),
              str(pdf), f"{tmp}/p"], "pdftoppm")
        crops: list[str] = []
        found: dict[int, Counter[str]] = {}
        for image_path in sorted(Path(tmp).glob("p-*.pgm")):
            page = int(image_path.stem.rsplit("-", 1)[1])
            found[page] = Counter()
            with Image.open(image_path) as image:
                for cell, box in enumerate(cell_boxes(layout, dpi)):
                    crop = f"{tmp}/c-{page}-{cell}.pgm"
                    image.crop(box).save(crop)
                    crops.append(crop)
        cells_with_code: set[tuple[int, int]] = set()
        for href, text in _zbar(crops):
            _, page_text, cell_text = Path(href).stem.split("-")
            found[int(page_text)][normalise_url(text)] += 1
            cells_with_code.add((int(page_text), int(cell_text)))
        blank = {page: sum((page, cell) not in cells_with_code for cell in range(layout.per_page)) for page in found}
        return found, blank


def _zbar(images: list[str]) -> list[tuple[str, str]]:
    """(image path, decoded text) for every QR code zbarimg finds in ``images``."""
    if not images:
        return []
    xml = _run([require_tool("zbarimg"), "--xml", "-q", "-Sdisable", "-Sqrcode.enable", *images], "zbarimg", ok=(0, 4))
    out = []
    for source in ET.fromstring(xml).iter(f"{_ZBAR_NS}source"):
        for data in source.iter(f"{_ZBAR_NS}data"):
            text = data.text or ""
            if data.get("format") == "base64":
                text = base64.b64decode(text).decode("utf-8", "replace")
            out.append((source.get("href", ""), text))
    return out


def page_count(pdf: Path) -> int:
    out = _run([require_tool("pdfinfo"), str(pdf)], "pdfinfo")
    match = re.search(r"^Pages:\s+(\d+)", out, re.MULTILINE)
    if not match:
        raise ConfigError(f"{pdf}: pdfinfo reports no page count (not a PDF?)")
    return int(match.group(1))


def decode_pages(pdf: Path, pages: int, options: tuple[str, ...], only: list[int] | None = None,
                 progress: Progress | None = None) -> dict[int, Counter[str]]:
    """Rasterise and decode whole pages (all, or ``only`` those) with one set of pdftoppm options, on all CPUs."""
    chunks = _runs(only if only is not None else list(range(1, pages + 1)), PAGES_PER_CHUNK)
    result: dict[int, Counter[str]] = {}
    total, done = sum(last - first + 1 for first, last in chunks), 0
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for (first, last), part in zip(chunks, pool.map(lambda c: _decode_chunk(pdf, c[0], c[1], options), chunks), strict=True):
            result.update(part)
            done += last - first + 1
            if progress:
                progress(done, total, f"whole pages at {options[1]} dpi")
    return result


def _runs(pages: list[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive page numbers as (first, last) ranges of at most ``limit`` pages (one pdftoppm call each)."""
    runs: list[tuple[int, int]] = []
    for page in sorted(pages):
        if runs and runs[-1][1] == page - 1 and page - runs[-1][0] < limit:
            runs[-1] = (runs[-1][0], page)
        else:
            runs.append((page, page))
    return runs


def _decode_chunk(pdf: Path, first: int, last: int, options: tuple[str, ...]) -> dict[int, Counter[str]]:
    with tempfile.TemporaryDirectory(prefix="tagsmith-check-") as tmp:
        _run([require_tool("pdftoppm"), *options, "-gray", "-png", "-f", str(first), "-l", str(last),
              str(pdf), f"{tmp}/p"], "pdftoppm")
        images = sorted(Path(tmp).glob("p-*.png"))
        found: dict[int, Counter[str]] = {int(p.stem.rsplit("-", 1)[1]): Counter() for p in images}
        for href, text in _zbar(list(map(str, images))):
            found[int(Path(href or "p-0").stem.rsplit("-", 1)[1])][normalise_url(text)] += 1
        return found


def _run(cmd: list[str], name: str, ok: tuple[int, ...] = (0,)) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in ok:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "dbus" not in ln.lower()]
        raise ConfigError(f"{name} failed (exit {proc.returncode}): {lines[-1] if lines else 'no message'}")
    return proc.stdout


def _merge(seen: dict[int, Counter[str]], new: dict[int, Counter[str]]) -> None:
    for page, counts in new.items():
        seen[page] = seen.get(page, Counter()) | counts  # per URL: the most any pass saw on that page


def _report(pages: int, wanted: dict[str, str], seen: dict[int, Counter[str]], passes: int) -> CheckReport:
    where: dict[str, list[int]] = {}
    for page in sorted(seen):
        for url, n in seen[page].items():
            where.setdefault(url, []).extend([page] * n)
    return CheckReport(
        pages=pages, expected=len(wanted), decoded=sum(len(v) for v in where.values()),
        found=tuple(sorted(s for u, s in wanted.items() if len(where.get(u, [])) == 1)),
        missing=tuple(sorted(s for u, s in wanted.items() if u not in where)),
        duplicates={wanted[u]: p for u, p in sorted(where.items()) if u in wanted and len(p) > 1},
        unknown={u: p for u, p in sorted(where.items()) if u not in wanted},
        passes=passes,
    )
