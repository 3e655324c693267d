"""QR mask selection faster than segno's own (docs/performance.md): the 8 candidates by XOR, scored as packed bitmaps.

Masking flips data modules only, and the format information depends only on the error level and
the mask, so ``symbol(mask k) = symbol(mask 0) XOR (reference(mask 0) XOR reference(mask k))`` for
any two contents of the same version and level: segno encodes once with mask 0 and the other seven
candidates cost one XOR each (rows and columns are packed into one int apiece, so every
penalty rule is a handful of big-int operations). Each is scored with the four penalty rules of ISO/IEC 18004
§7.8.3.1 (N1 = 3, N2 = 3, N3 = 40, N4 = 10); the lowest score wins, ties going to the lower mask.
The tests check every candidate against segno's own ``make_qr(..., mask=k)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import segno

_BITS = bytes.maketrans(b"\x00\x01", b"01")
GUARD = 4  # light bits after each packed line: the quiet zone seen by the finder-like rule


def row_ints(matrix: Sequence[Sequence[int]]) -> list[int]:
    """Rows of 0/1 modules as ints, the first module in the most significant bit."""
    return [int(bytes(row).translate(_BITS), 2) for row in matrix]


def pack(lines: Sequence[int], size: int) -> int:
    """All lines in one int, ``size + GUARD`` bits apart: each penalty rule is then a few big-int operations."""
    width, out = size + GUARD, 0
    for i, line in enumerate(lines):
        out |= line << (i * width)
    return out


def unpack(packed: int, size: int) -> list[int]:
    width, full = size + GUARD, (1 << size) - 1
    return [(packed >> (i * width)) & full for i in range(size)]


@lru_cache(maxsize=256)
def mask_xors(version: int, error: str) -> tuple[tuple[int, int], ...]:
    """Per mask k, the packed (rows, columns) XOR that turns a mask-0 symbol into its mask-k twin."""
    refs = [segno.make_qr("0", error=error, version=version, mask=k, boost_error=False).matrix for k in range(8)]
    size = len(refs[0])
    packed = [(pack(row_ints(m), size), pack(row_ints(list(zip(*m, strict=True))), size)) for m in refs]
    return tuple((packed[0][0] ^ rows, packed[0][1] ^ cols) for rows, cols in packed)


@lru_cache(maxsize=64)
def _windows(size: int) -> tuple[int, int, int, int]:
    """Valid start bits per packed line: 5-run windows, run starts, 7-module patterns, 2x2 blocks."""
    def starts(count: int, lines: int = size) -> int:
        return pack([(1 << count) - 1] * lines, size) if count > 0 else 0

    not_first = starts(size) & ~pack([1] * size, size)  # bit j-1 is in the same line
    return starts(size - 4), not_first, starts(size - 6), starts(size - 1, size - 1)


def _runs_and_finders(b: int, size: int) -> int:
    """N1 (runs of 5+ alike: 3 + extra length) and N3 (1:1:3:1:1 with 4 light on a side: 40) of packed lines."""
    v5, not_first, v7, _ = _windows(size)
    eq = ~(b ^ (b >> 1))  # bit j: modules j and j+1 alike
    e4 = eq & (eq >> 1) & (eq >> 2) & (eq >> 3) & v5  # bit j: modules j..j+4 alike
    run_starts = e4 & ~((eq << 1) & not_first)
    n1 = e4.bit_count() + 2 * run_starts.bit_count()  # a run of L >= 5 scores L - 2 = (L - 4) + 2
    pattern = b & ~(b >> 1) & (b >> 2) & (b >> 3) & (b >> 4) & ~(b >> 5) & (b >> 6) & v7
    light_after = ~((b >> 7) | (b >> 8) | (b >> 9) | (b >> 10))
    light_before = ~((b << 1) | (b << 2) | (b << 3) | (b << 4))
    return n1 + 40 * (pattern & (light_after | light_before)).bit_count()


def penalty(rows: int, cols: int, size: int) -> int:
    """ISO/IEC 18004 mask penalty N1 + N2 + N3 + N4 of a symbol packed by rows and by columns."""
    width, v22 = size + GUARD, _windows(size)[3]
    dark = rows & (rows >> 1) & (rows >> width) & (rows >> (width + 1))
    light = ~(rows | (rows >> 1) | (rows >> width) | (rows >> (width + 1)))
    n2 = 3 * ((dark | light) & v22).bit_count()
    total = size * size
    n4 = 10 * (abs(rows.bit_count() * 100 - 50 * total) // (5 * total))
    return _runs_and_finders(rows, size) + _runs_and_finders(cols, size) + n2 + n4


def best_mask(matrix: Sequence[Sequence[int]], version: int, error: str) -> tuple[int, list[int]]:
    """The lowest-penalty mask (ties: the lower number) and the symbol's rows under it, from segno's mask-0 matrix."""
    size = len(matrix)
    rows0, cols0 = pack(row_ints(matrix), size), pack(row_ints(list(zip(*matrix, strict=True))), size)
    scores = [(penalty(rows0 ^ xr, cols0 ^ xc, size), k) for k, (xr, xc) in enumerate(mask_xors(version, error))]
    _, k = min(scores)
    return k, unpack(rows0 ^ mask_xors(version, error)[k][0], size)


def row_runs(rows: Sequence[int], size: int) -> tuple[tuple[int, int, int], ...]:
    """Horizontal runs of dark modules ``(x, y, width)`` from row bitmaps."""
    out = []
    for y, r in enumerate(rows):
        for m in _DARK.finditer(format(r, f"0{size}b")):
            out.append((m.start(), y, m.end() - m.start()))
    return tuple(out)


_DARK = re.compile("1+")
