"""Prove a label PDF: rasterise it (poppler's pdftoppm), decode every QR (zbar's zbarimg), compare.

Every expected unit must appear exactly once and every decoded URL must be a known one. zbar
sometimes misses one code among many on a full sheet (measured: 1 of 30 on a 5160 page at 300 dpi,
a different one at 200 or 600 dpi), so when something is missing the pages are decoded again at
other resolutions and merged per page, counting each URL as often as the best pass saw it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tagsmith import ConfigError, NotFoundError

from . import MissingToolError

TOOLS = {"pdftoppm": "poppler-utils", "pdfinfo": "poppler-utils", "zbarimg": "zbar-tools"}
PASSES = (("-r", "300"), ("-r", "400", "-aa", "no", "-aaVector", "no"),
          ("-r", "200", "-aa", "no", "-aaVector", "no"), ("-r", "150"))
PAGES_PER_CHUNK = 100
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


def check_pdf(pdf_path: str | Path, expected: Mapping[str, str]) -> CheckReport:
    """Decode every QR in a label PDF and compare with ``expected`` (URL -> serial)."""
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
    for options in PASSES:
        passes += 1
        _merge(seen, decode_pages(pdf, pages, options))
        if set(wanted) <= {u for counts in seen.values() for u in counts}:
            break
    return _report(pages, wanted, seen, passes)


def page_count(pdf: Path) -> int:
    out = _run([require_tool("pdfinfo"), str(pdf)], "pdfinfo")
    match = re.search(r"^Pages:\s+(\d+)", out, re.MULTILINE)
    if not match:
        raise ConfigError(f"{pdf}: pdfinfo reports no page count (not a PDF?)")
    return int(match.group(1))


def decode_pages(pdf: Path, pages: int, options: tuple[str, ...]) -> dict[int, Counter[str]]:
    """Rasterise and decode all pages with one set of pdftoppm options, in chunks on all CPUs."""
    chunks = [(first, min(first + PAGES_PER_CHUNK - 1, pages)) for first in range(1, pages + 1, PAGES_PER_CHUNK)]
    result: dict[int, Counter[str]] = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for part in pool.map(lambda c: _decode_chunk(pdf, c[0], c[1], options), chunks):
            result.update(part)
    return result


def _decode_chunk(pdf: Path, first: int, last: int, options: tuple[str, ...]) -> dict[int, Counter[str]]:
    with tempfile.TemporaryDirectory(prefix="tagsmith-check-") as tmp:
        _run([require_tool("pdftoppm"), *options, "-gray", "-png", "-f", str(first), "-l", str(last),
              str(pdf), f"{tmp}/p"], "pdftoppm")
        images = sorted(Path(tmp).glob("p-*.png"))
        found: dict[int, Counter[str]] = {int(p.stem.rsplit("-", 1)[1]): Counter() for p in images}
        xml = _run([require_tool("zbarimg"), "--xml", "-q", "-Sdisable", "-Sqrcode.enable",
                    *map(str, images)], "zbarimg", ok=(0, 4))
        for source in ET.fromstring(xml).iter(f"{_ZBAR_NS}source"):
            page = int(Path(source.get("href", "p-0")).stem.rsplit("-", 1)[1])
            for data in source.iter(f"{_ZBAR_NS}data"):
                text = data.text or ""
                if data.get("format") == "base64":
                    text = base64.b64decode(text).decode("utf-8", "replace")
                found[page][normalise_url(text)] += 1
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
