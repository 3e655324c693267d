"""QR planning and encoding: never Micro QR, explicit level, safe compaction, merged runs."""

from __future__ import annotations

import pytest
import segno

from tagsmith import ConfigError
from tagsmith.labels import qr

URL = "https://id.acme-appliances.com/01/09506000134352/10/B2026W47/21/K7Q2M9X4PZ"


def test_compaction_upper_cases_only_the_host_and_keeps_the_scheme():
    assert qr.compact_text(URL) == "https://ID.ACME-APPLIANCES.COM/01/09506000134352/10/B2026W47/21/K7Q2M9X4PZ"


@pytest.mark.parametrize("url", [
    "https://id.example.com/01/09506000134352/21/dw6a00001k",  # lower-case serial: path is case-sensitive
    "https://id.example.com/products/01/09506000134352/21/DW6A00001K",  # lower-case stem
    "https://id.example.com/01/09506000134352/21/DW6A00001K?linkType=gs1:pip",
])
def test_compaction_never_changes_a_url_whose_path_is_not_upper_case(url):
    assert qr.compact_text(url) == url


def test_compaction_saves_a_version_at_m_as_measured_in_the_reference():
    # docs/reference/labels-gs1.md §2.2: the 74-char URL is v5 at M in byte mode, v4 with https:// + upper-case rest
    assert segno.make_qr(URL, error="m", boost_error=False).version == 5
    assert qr.plan(URL, "M").version == 4
    assert qr.plan(URL, "Q").version == 5


def test_segments_keep_the_scheme_in_byte_mode_and_the_gtin_numeric():
    segments = dict((text, mode) for text, mode in qr.plan(URL).segments)
    assert segments["https"] == "B"
    assert segments["09506000134352"] == "N"


@pytest.mark.parametrize("error", ["M", "Q", "m"])
def test_encode_gives_a_full_qr_at_the_requested_level(error):
    symbol = qr.encode("https://id.example.com/01/09506000134352/21/DW6A00001K", error)
    reference = segno.make_qr(list((t, qr._MODES[m]) for t, m in symbol.plan.segments),
                              error=error, version=symbol.plan.version, mask=symbol.mask, boost_error=False)
    assert not reference.is_micro and reference.error == error.upper()
    assert _matrix_from_runs(symbol.runs, symbol.modules) == [list(row) for row in reference.matrix]


def test_short_content_is_never_micro_qr():
    symbol = qr.encode("https://a.b/21/1")
    assert symbol.plan.version >= 1 and symbol.modules == 17 + 4 * symbol.plan.version


@pytest.mark.parametrize("error", ["L", "H", "X"])
def test_only_m_and_q_are_accepted(error):
    with pytest.raises(ConfigError, match="use M"):
        qr.plan("https://id.example.com/01/09506000134352/21/A", error)


def test_url_too_long_for_any_qr_is_refused():
    with pytest.raises(ConfigError, match="too long for any QR"):
        qr.plan("https://id.example.com/01/09506000134352/21/A?x=" + "a" * 3000)


def test_runs_merge_each_horizontal_run_into_one_triple():
    from tagsmith.labels.masks import row_runs

    assert row_runs([0b1101, 0b0000, 0b1111, 0b0110], 4) == ((0, 0, 2), (3, 0, 1), (0, 2, 4), (1, 3, 2))


def test_encode_many_in_processes_matches_serial_encoding():
    urls = [f"https://id.example.com/01/09506000134352/21/DW6A{i:05d}K" for i in range(210)]
    assert qr.encode_many(urls, workers=2) == [qr.encode(u) for u in urls]


def _matrix_from_runs(runs, size):
    matrix = [[0] * size for _ in range(size)]
    for x, y, n in runs:
        for i in range(x, x + n):
            matrix[y][i] = 1
    return matrix
