"""Every shipped layout renders a small batch to PDF whose QR codes decode back to their own units."""

from __future__ import annotations

import base64
import re
import zlib
from pathlib import Path

import pytest

from tagsmith import ConfigError
from tagsmith.labels import qr
from tagsmith.labels.check import check_pdf
from tagsmith.labels.layouts import load_layout, parse_layout, shipped_layouts
from tagsmith.labels.pdf import render_pdf


def _streams(pdf: Path) -> list[bytes]:
    """Page content streams, undoing reportlab's ASCII85 + Flate filters."""
    out = []
    for filters, body in re.findall(rb"/Filter \[ ([^\]]*) \][^>]*>>\s*stream\r?\n(.*?)\s*endstream", pdf.read_bytes(), re.S):
        if b"ASCII85Decode" in filters:
            body = base64.a85decode(body.strip().removesuffix(b"~>"))
        out.append(zlib.decompress(body))
    return out


@pytest.mark.parametrize("name", shipped_layouts())
def test_each_layout_renders_and_every_qr_decodes_to_its_unit(make_units, name, tmp_path, label_tools):
    layout = load_layout(name)
    count = min(layout.per_page + 2, 30) if layout.kind == "sheet" else 6  # sheets: cross a page break
    units = make_units(count)
    pdf = tmp_path / f"{name}.pdf"
    result = render_pdf(units, layout, pdf)
    assert result.labels == count and result.pages == -(-count // layout.per_page)
    report = check_pdf(pdf, {u.url: u.serial for u in units})
    assert report.ok, report.to_dict()
    assert report.found == tuple(sorted(u.serial for u in units)) and report.decoded == count


def test_qr_codes_are_merged_vector_runs_not_images(make_units, tmp_path):
    units = make_units(3)
    pdf = tmp_path / "roll.pdf"
    render_pdf(units, load_layout("roll-50x25"), pdf, workers=1)
    assert b"/Subtype /Image" not in pdf.read_bytes()
    ops = b"".join(_streams(pdf))
    rects = len(re.findall(rb"^\d+ \d+ \d+ 1 re$", ops, re.M))
    assert rects == sum(len(qr.encode(u.url).runs) for u in units)
    dark = sum(n for u in units for _, _, n in qr.encode(u.url).runs)
    assert rects < 0.7 * dark  # one rectangle per run, not per module


def test_text_lines_show_serial_model_gtin_and_skip_empty_fields(make_units, tmp_path):
    units = make_units(2)  # unit 0: no lot, no extra text; unit 1: both
    pdf = tmp_path / "a.pdf"
    render_pdf(units, load_layout("roll-50x25"), pdf)
    first, second = _streams(pdf)[:2]
    assert b"(SN DW6A00000K) Tj" in first and b"(WM-8000) Tj" in first and b"(\\(01\\) 09506000134352) Tj" in first
    assert b"B2026W47" not in first and b"Scan for manuals" not in first
    assert b"(\\(10\\) B2026W47) Tj" in second and b"(Scan for manuals) Tj" in second


def test_a_logo_is_drawn_from_the_layout(make_units, tmp_path, label_tools):
    from PIL import Image

    Image.new("RGB", (40, 20), (200, 0, 0)).save(tmp_path / "logo.png")
    toml = (Path(__file__).parents[2] / "labels" / "layouts" / "roll-4x6in.toml").read_text()
    toml += '\n[logo]\npath = "logo.png"\nx = 5.0\ny = 142.0\nwidth = 20.0\nheight = 8.0\n'
    (tmp_path / "branded.toml").write_text(toml)
    layout = load_layout(tmp_path / "branded.toml")
    units = make_units(2)
    render_pdf(units, layout, tmp_path / "b.pdf")
    assert b"/Subtype /Image" in (tmp_path / "b.pdf").read_bytes()
    assert check_pdf(tmp_path / "b.pdf", {u.url: u.serial for u in units}).ok


def test_a_batch_with_a_url_too_long_for_the_layout_fails_before_writing(make_units, tmp_path):
    units = make_units(2)
    units.append(type(units[0])(url="https://id.example.com/01/09506000134352/21/" + "x" * 30 + "?linkType=gs1:pip",
                                serial="X", model="m", gtin="09506000134352", name="n"))
    with pytest.raises(ConfigError, match="cannot fit a scannable QR"):
        render_pdf(units, load_layout("roll-50x25"), tmp_path / "no.pdf")
    assert not (tmp_path / "no.pdf").exists()


def test_long_text_shrinks_to_fit_its_line(make_units, tmp_path):
    layout = load_layout("letter-30up-5160")
    unit = make_units(1)[0]
    long = type(unit)(url=unit.url, serial=unit.serial, model="M" * 60, gtin=unit.gtin, name=unit.name)
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from tagsmith.labels.place import place_label, place_qr

    label = place_label(layout, long, place_qr(layout, layout.fit(qr.plan(unit.url))))
    model = next(t for t in label.texts if t.text.startswith("MMM"))
    assert model.size >= 4.0 and model.text.endswith("...")
    assert model.x + stringWidth(model.text, model.font, model.size) * 25.4 / 72 <= layout.label_width


def test_sheet_layout_error_level_q_changes_the_symbols(make_units, tmp_path, label_tools):
    text = (Path(__file__).parents[2] / "labels" / "layouts" / "roll-50x25.toml").read_text()
    layout = parse_layout(text.replace('error = "M"', 'error = "Q"'), "roll-q")
    units = make_units(3)
    result = render_pdf(units, layout, tmp_path / "q.pdf")
    assert all(v.endswith("-Q") for v in result.versions)
    assert check_pdf(tmp_path / "q.pdf", {u.url: u.serial for u in units}).ok
