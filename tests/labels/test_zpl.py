"""ZPL checked field by field: one ^XA..^XZ per unit, ^BQ parameters, the ^FD mode prefix, text fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tagsmith import ConfigError
from tagsmith.labels import qr
from tagsmith.labels.layouts import load_layout, parse_layout
from tagsmith.labels.model import LabelData
from tagsmith.labels.zpl import field_data, render_zpl

COMMAND = re.compile(r"\^([A-Z][A-Z0-9@])([^\^~]*)")


def _commands(label: str) -> list[tuple[str, str]]:
    """(command, parameters) pairs; ^FD's data runs to the next ^FS."""
    out, i = [], 0
    while i < len(label):
        m = COMMAND.match(label, i)
        if not m:
            i += 1
            continue
        if m.group(1) == "FD":
            end = label.index("^FS", m.start())
            out.append(("FD", label[m.start() + 3:end]))
            i = end
        else:
            out.append((m.group(1), m.group(2).strip()))
            i = m.end()
    return out


# dots per module by QR version: 203 dpi -> 4 dots (0.50 mm); 300 dpi -> 7 (0.59 mm) for v3, 6 (0.51 mm) for v4
@pytest.mark.parametrize("dpi, width, height, mags", [(203, 400, 200, {3: 4, 4: 4}), (300, 591, 295, {3: 7, 4: 6})])
def test_each_unit_is_one_label_with_qr_and_text_fields(make_units, dpi, width, height, mags):
    units = make_units(6)
    labels = list(render_zpl(units, load_layout("roll-50x25"), dpi))
    assert len(labels) == 6
    for unit, label in zip(units, labels, strict=True):
        cmds = _commands(label)
        names = [c for c, _ in cmds]
        assert names[0] == "XA" and names[-1] == "XZ" and names.count("XA") == 1
        params = dict(cmds[:6])
        assert "CI" in params and params["CI"] == "28"
        assert params["PW"] == str(width) and params["LL"] == str(height)
        bq = names.index("BQ")
        assert names.index("BY") < names.index("FO") < bq  # ^BY pinned before the QR's ^FO
        assert cmds[bq][1] == f"N,2,{mags[qr.plan(unit.url).version]},M,7"
        data = cmds[bq + 1]
        assert data == ("FD", "MA," + qr.compact_text(unit.url))  # EC M + automatic input mode, then the URL
        texts = [v for c, v in cmds if c == "FD"][1:]
        assert texts[0] == f"SN {unit.serial}" and texts[1] == unit.model and texts[2] == f"(01) {unit.gtin}"
        assert (f"(10) {unit.lot}" in texts) == (unit.lot is not None)
        fonts = [v for c, v in cmds if c == "A0"]
        assert len(fonts) == len(texts) and all(re.fullmatch(r"N,\d+,\d+", f) for f in fonts)
        assert names.count("FT") == len(texts)  # text placed by baseline, like the PDF


def test_qr_position_is_inside_the_label_and_module_matches_the_magnification(make_units):
    label = next(render_zpl(make_units(1), load_layout("roll-50x25"), 203))
    x, y = map(int, re.search(r"\^FO(\d+),(\d+)\^BQ", label).groups())
    assert 16 <= x < 200 and 0 <= y < 200 - 29 * 4  # after the quiet zone, and the symbol fits


def test_error_level_q_goes_into_both_bq_and_the_field_prefix():
    text = (Path(__file__).parents[2] / "labels" / "layouts" / "roll-4x6in.toml").read_text()
    layout = parse_layout(text.replace('error = "M"', 'error = "Q"'), "q")
    unit = LabelData(url="https://id.example.com/01/09506000134352/21/DW6A00001K", serial="DW6A00001K",
                     model="m", gtin="09506000134352", name="n")
    label = next(render_zpl([unit], layout, 203))
    assert ",Q,7^FDQA,https://ID.EXAMPLE.COM/" in label


def test_caret_and_tilde_are_hex_escaped_with_fh():
    assert field_data("A^B~C_D") == ("^FH_", "A_5EB_7EC_5FD")
    assert field_data("plain_text") == ("", "plain_text")
    unit = LabelData(url="https://id.example.com/01/09506000134352/21/X1", serial="X1", model="M^1~2",
                     gtin="09506000134352", name="n")
    label = next(render_zpl([unit], load_layout("roll-50x25"), 203))
    assert "^FH_^FDM_5E1_7E2^FS" in label and "M^1" not in label


def test_utf8_text_is_kept_under_ci28():
    unit = LabelData(url="https://id.example.com/01/09506000134352/21/X1", serial="X1", model="Spülmaschine",
                     gtin="09506000134352", name="n")
    assert "^FDSpülmaschine^FS" in next(render_zpl([unit], load_layout("roll-50x25"), 203))


def test_unsupported_dpi_and_a_url_too_long_are_refused(make_units):
    with pytest.raises(ConfigError, match="dpi 150"):
        next(render_zpl(make_units(1), load_layout("roll-50x25"), 150))
    long = LabelData(url="https://id.example.com/01/09506000134352/21/" + "x" * 60, serial="X", model="m",
                     gtin="09506000134352", name="n")
    with pytest.raises(ConfigError, match="roll-50x25.*needs .* mm.*QR area is 23.00 mm"):
        next(render_zpl([long], load_layout("roll-50x25"), 203))
