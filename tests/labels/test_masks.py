"""The fast mask selection: candidates equal segno's own per-mask symbols; the penalty equals a plain one."""

from __future__ import annotations

import random

import pytest
import segno

from tagsmith.labels import masks


def _naive_penalty(m: list[list[int]]) -> int:
    """ISO/IEC 18004 §7.8.3.1 written out module by module (outside the symbol counts as light)."""
    n = len(m)
    lines = [row for row in m] + [[m[i][j] for i in range(n)] for j in range(n)]
    score = 0
    for line in lines:
        run = 1
        for a, b in zip(line, line[1:] + [None], strict=True):
            if a == b:
                run += 1
            else:
                score += run - 2 if run >= 5 else 0
                run = 1
        padded = [0] * 4 + line + [0] * 4
        for j in range(4, n + 4 - 6):
            if padded[j:j + 7] == [1, 0, 1, 1, 1, 0, 1] and (padded[j - 4:j] == [0] * 4 or padded[j + 7:j + 11] == [0] * 4):
                score += 40
    score += 3 * sum(1 for i in range(n - 1) for j in range(n - 1)
                     if m[i][j] == m[i][j + 1] == m[i + 1][j] == m[i + 1][j + 1])
    dark = sum(map(sum, m))
    score += 10 * (abs(dark * 100 - 50 * n * n) // (5 * n * n))
    return score


CASES = [(v, ec, seed) for v in (1, 2, 3, 4, 5, 6, 7, 10, 14) for ec in "MQ" for seed in range(2)]


@pytest.mark.parametrize("version, error, seed", CASES)
def test_every_mask_candidate_is_segnos_symbol_and_scores_like_the_plain_rules(version, error, seed):
    rng = random.Random(f"{version}{error}{seed}")
    content = "".join(rng.choice("0123456789ABCDEFXYZ") for _ in range(rng.randint(1, 15)))
    mask0 = segno.make_qr(content, error=error, version=version, mask=0, boost_error=False).matrix
    size = len(mask0)
    rows0 = masks.pack(masks.row_ints(mask0), size)
    cols0 = masks.pack(masks.row_ints(list(zip(*mask0, strict=True))), size)
    scores = []
    for k, (xr, xc) in enumerate(masks.mask_xors(version, error)):
        own = [list(r) for r in segno.make_qr(content, error=error, version=version, mask=k, boost_error=False).matrix]
        assert masks.unpack(rows0 ^ xr, size) == masks.row_ints(own)
        assert masks.unpack(cols0 ^ xc, size) == masks.row_ints(list(zip(*own, strict=True)))
        assert masks.penalty(rows0 ^ xr, cols0 ^ xc, size) == _naive_penalty(own)
        scores.append((_naive_penalty(own), k))
    chosen, rows = masks.best_mask(mask0, version, error)
    assert chosen == min(scores)[1]
