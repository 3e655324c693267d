"""Shipped layouts load and are consistent; a layout that cannot hold a scannable QR is refused."""

from __future__ import annotations

import pytest

from tagsmith import ConfigError, NotFoundError
from tagsmith.labels import qr
from tagsmith.labels.layouts import load_layout, parse_layout, shipped_layouts

SHIPPED = ["a4-24up-70x37", "a4-l7160-21up", "letter-30up-5160", "roll-2x1in", "roll-4x6in", "roll-50x25"]
URL = "https://id.example.com/01/09506000134352/10/B2026W47/21/DW6A00001K"

SMALL = """
description = "tiny"
[page]
width = 20.0
height = 12.0
[labels]
width = 20.0
height = 12.0
[qr]
x = 0.0
y = 0.0
size = {size}
"""


def test_the_stocks_of_the_issue_ship_with_the_package():
    assert shipped_layouts() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_layout_loads_and_fits_a_typical_unit_url(name):
    layout = load_layout(name)
    assert layout.name == name and layout.per_page >= 1
    fit = layout.fit(qr.plan(URL, layout.qr.error))
    assert qr.MIN_MODULE_MM <= fit.module <= qr.MAX_MODULE_MM
    assert fit.side <= layout.qr.size + 1e-9
    assert layout.max_version() >= 4


def test_sheet_grids_match_the_stock():
    a4 = load_layout("a4-24up-70x37")
    assert (a4.columns, a4.rows, a4.label_width, a4.label_height) == (3, 8, 70.0, 37.0)
    letter = load_layout("letter-30up-5160")
    assert letter.per_page == 30 and letter.origin(29) == pytest.approx((3.96875 + 2 * 70.64375, 12.7 + 9 * 25.4))


def test_rolls_snap_modules_to_whole_203_dpi_dots():
    fit = load_layout("roll-50x25").fit(qr.plan(URL))
    assert fit.module == pytest.approx(4 * 25.4 / 203)


def test_unknown_layout_name_lists_the_shipped_ones():
    with pytest.raises(NotFoundError, match="roll-50x25"):
        load_layout("no-such-stock")


def test_layout_file_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(SMALL.format(size=12.0))
    assert load_layout(path).name == "mine"


def test_a_layout_too_small_for_the_qr_is_refused_with_needed_vs_available_mm():
    layout = parse_layout(SMALL.format(size=12.0), "tiny")
    with pytest.raises(ConfigError) as err:
        layout.fit(qr.plan(URL))
    message = str(err.value)
    assert "layout 'tiny'" in message and "needs 16.24 mm" in message and "QR area is 12.00 mm" in message


def test_a_url_too_long_for_a_layout_is_refused():
    layout = load_layout("roll-50x25")
    long_url = "https://id.example-appliances-worldwide.com/products/01/09506000134352/10/B2026W47/21/dw6a00001kxyzxyzxy"
    with pytest.raises(ConfigError, match=r"roll-50x25.*version \d+-M.*at 203 dpi"):
        layout.fit(qr.plan(long_url))


def test_a_qr_area_that_cannot_hold_version_1_is_refused_at_load():
    with pytest.raises(ConfigError, match="cannot hold even a version-1"):
        parse_layout(SMALL.format(size=10.0), "tiny")


@pytest.mark.parametrize("patch, message", [
    ("[labels]\nwidth = 20.0", "TOML"),  # duplicate table
    ("[logo]\npath = 'nope.png'\nx = 0\ny = 0\nwidth = 1\nheight = 1", "logo"),
    ("[[text]]\ntext = '{colour}'\nx = 13.0\ny = 5.0", "unknown field"),
    ("[[text]]\ntext = 'X'\nx = 1.0\ny = 5.0", "inside the QR area"),
    ("typo = 1", "unknown key"),
])
def test_bad_layouts_are_refused_with_the_reason(patch, message):
    with pytest.raises(ConfigError, match=message):
        parse_layout(SMALL.format(size=12.0) + patch, "tiny")


def test_labels_that_leave_the_page_are_refused():
    text = SMALL.format(size=12.0).replace("[labels]", "[labels]\ncolumns = 2")
    with pytest.raises(ConfigError, match="labels need 40.00 x 12.00 mm"):
        parse_layout(text, "tiny")
