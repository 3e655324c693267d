"""The unit's QR code: segment planning, symbol encoding with segno, and runs for vector drawing.

Rules from docs/reference/labels-gs1.md §2: always ``segno.make_qr`` (``segno.make`` can
silently pick a Micro QR, which phones cannot read), an explicit error level with
``boost_error=False``, a 4-module quiet zone, and the host upper-cased only when the whole rest
of the URL is already QR-alphanumeric, so it fits a smaller version without changing what the
URL means (the scheme stays lower-case: several scanners mishandle ``HTTPS://``; path values are
case-sensitive in GS1 Digital Link, so the path is never changed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import segno
from segno import consts

from tagsmith import ConfigError

from .masks import best_mask, row_runs

QUIET_ZONE = 4
ERROR_LEVELS = ("M", "Q")
MIN_MODULE_MM = 0.396  # GS1 General Specifications 5.12.3.1 (QR powered by GS1, POS range)
MAX_MODULE_MM = 0.990

_ALNUM = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
_URL = re.compile(r"^(https?://)([^/?#]*)(.*)$", re.IGNORECASE | re.DOTALL)
_MODES = {"N": consts.MODE_NUMERIC, "A": consts.MODE_ALPHANUMERIC, "B": consts.MODE_BYTE}


class _Classes(dict):
    """Translation table for the segment planner: N digit, A other alphanumeric, B anything else."""

    def __missing__(self, key: int) -> str:
        return "B"


_CLASS = _Classes({ord(c): "A" for c in _ALNUM} | {ord(c): "N" for c in "0123456789"})
# Bits per character, times 6 to stay in integers (numeric 10/3, alphanumeric 11/2, byte 8).
_CHAR_COST = {"N": 20, "A": 33, "B": 48}
# Character-count bits for versions 1-9, 10-26 and 27-40 (ISO/IEC 18004 table 3).
_COUNT_BITS = ({"N": 10, "A": 9, "B": 8}, {"N": 12, "A": 11, "B": 16}, {"N": 14, "A": 13, "B": 16})
_ALLOWED = {"N": "NAB", "A": "AB", "B": "B"}


@dataclass(frozen=True)
class QrPlan:
    """What goes into the symbol: the text as encoded, its segments, and the version it needs."""

    url: str
    text: str
    segments: tuple[tuple[str, str], ...]  # (text, mode letter N/A/B)
    error: str
    version: int

    @property
    def modules(self) -> int:
        """Symbol width in modules, without the quiet zone."""
        return 17 + 4 * self.version


@dataclass(frozen=True)
class QrSymbol:
    """An encoded symbol: its plan and the dark modules as horizontal runs ``(x, y, width)``."""

    plan: QrPlan
    runs: tuple[tuple[int, int, int], ...]
    mask: int

    @property
    def modules(self) -> int:
        return self.plan.modules


def check_error_level(error: str) -> str:
    """Normalise and check an error-correction level (M default, Q for labels that get scuffed)."""
    level = error.upper()
    if level not in ERROR_LEVELS:
        raise ConfigError(f"QR error correction {error!r}: use M (default) or Q")
    return level


def compact_text(url: str) -> str:
    """The URL with its host upper-cased when everything after ``scheme://`` becomes QR-alphanumeric.

    The host is case-insensitive (RFC 3986 §6.2.2.1); the scheme is kept lower-case and the
    path is never changed, so this applies only when serials, lots and stems are upper-case already.
    """
    match = _URL.match(url)
    if not match:
        return url
    scheme, host, rest = match.groups()
    tail = host.upper() + rest
    if all(c in _ALNUM for c in tail):
        return scheme.lower() + tail
    return url


@lru_cache(maxsize=4096)
def _modes_for(classes: str, group: int) -> str:
    """The cheapest mode per character for a class string (a small DP over N/A/B segments)."""
    count_bits = _COUNT_BITS[group]
    header = {m: (4 + count_bits[m]) * 6 for m in "NAB"}
    inf = float("inf")
    cost = {m: inf for m in "NAB"}
    back: list[dict[str, str]] = []
    for i, cls in enumerate(classes):
        new, step = {m: inf for m in "NAB"}, {}
        for m in _ALLOWED[cls]:
            for prev in "NAB":
                if i == 0 and prev != m:
                    continue
                base = (0 if i == 0 else cost[prev]) + (header[m] if i == 0 or prev != m else 0)
                if base + _CHAR_COST[m] < new[m]:
                    new[m], step[m] = base + _CHAR_COST[m], prev
        cost = new
        back.append(step)
    mode = min(cost, key=cost.__getitem__)
    modes = []
    for step in reversed(back):
        modes.append(mode)
        mode = step[mode]
    return "".join(reversed(modes))


def _segments(text: str, group: int) -> tuple[tuple[str, str], ...]:
    modes = _modes_for(text.translate(_CLASS), group)
    out: list[tuple[str, str]] = []
    start = 0
    for i in range(1, len(text) + 1):
        if i == len(text) or modes[i] != modes[start]:
            out.append((text[start:i], modes[start]))
            start = i
    return tuple(out)


def _shape(segments: Sequence[tuple[str, str]]) -> tuple[tuple[str, int], ...]:
    return tuple((m, len(t.encode("utf-8")) if m == "B" else len(t)) for t, m in segments)


def _segno_content(segments: Sequence[tuple[str, str]]) -> Any:
    """The segments as segno takes them, (text, mode) pairs (its annotation names only str, int, bytes)."""
    return [(text, _MODES[mode]) for text, mode in segments]


@lru_cache(maxsize=4096)
def _version_for(shape: tuple[tuple[str, int], ...], error: str) -> int:
    """The version a segment shape needs; memoised because a batch's URLs share one shape."""
    dummy = [("0" * n if mode == "N" else "A" * n, mode) for mode, n in shape]
    try:
        return int(segno.make_qr(_segno_content(dummy), error=error, boost_error=False, mask=0).version)
    except segno.DataOverflowError:
        raise ConfigError(f"URL too long for any QR code at level {error} ({sum(n for _, n in shape)} characters)") from None


def plan(url: str, error: str = "M", compact: bool = True) -> QrPlan:
    """Plan the symbol for a URL without drawing it (fast: what ZPL and fit checks need)."""
    error = check_error_level(error)
    text = compact_text(url) if compact else url
    segments = _segments(text, 0)
    version = _version_for(_shape(segments), error)
    if version > 9:  # longer character counts change the best segmentation
        segments = _segments(text, 1 if version <= 26 else 2)
        version = _version_for(_shape(segments), error)
    return QrPlan(url=url, text=text, segments=segments, error=error, version=version)


def encode(url: str, error: str = "M", compact: bool = True) -> QrSymbol:
    """Encode a URL as a full QR symbol (never Micro QR) with the lowest-penalty mask.

    segno encodes with mask 0; ``masks.best_mask`` derives and scores all eight masks from it.
    """
    p = plan(url, error, compact)
    qr = segno.make_qr(_segno_content(p.segments), error=p.error, version=p.version, mask=0, boost_error=False)
    assert not qr.is_micro and qr.version == p.version
    mask, rows = best_mask(qr.matrix, p.version, p.error)
    return QrSymbol(plan=p, runs=row_runs(rows, p.modules), mask=mask)


def _encode_args(args: tuple[str, str, bool]) -> QrSymbol:
    return encode(*args)


def encode_many(urls: Sequence[str], error: str = "M", compact: bool = True, workers: int = 1) -> list[QrSymbol]:
    """Encode many URLs; ``workers > 1`` spreads batches of 200+ over processes (docs/performance.md).

    One process is the default: on the 2-CPU bench machine, 10,000 labels took 20.1 s in one
    process and 21.2 s with two (pickling and pool start-up eat the gain).
    """
    jobs = [(u, error, compact) for u in urls]
    if workers <= 1 or len(jobs) < 200:
        return [_encode_args(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_encode_args, jobs, chunksize=max(50, len(jobs) // (workers * 8))))
