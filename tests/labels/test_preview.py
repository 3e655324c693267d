"""Single-label previews: the PNG decodes, the SVG's path is exactly the symbol's dark modules."""

from __future__ import annotations

import re
import subprocess

from tagsmith.labels import qr
from tagsmith.labels.layouts import load_layout
from tagsmith.labels.preview import render_png, render_svg, write_preview


def test_png_preview_decodes_to_the_unit_url(make_units, tmp_path, label_tools):
    unit = make_units(2)[1]
    for name in ("roll-50x25", "a4-24up-70x37"):
        path = tmp_path / f"{name}.png"
        write_preview(unit, load_layout(name), path, "png")
        out = subprocess.run(["zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", str(path)],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == qr.compact_text(unit.url)


def test_png_has_the_label_size_at_the_requested_dpi(make_units):
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(render_png(make_units(1)[0], load_layout("roll-50x25"), dpi=203)))
    assert image.size == (400, 200)


def test_svg_preview_draws_the_symbol_runs_and_the_text(make_units):
    unit = make_units(2)[1]
    svg = render_svg(unit, load_layout("roll-50x25"))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="50.0mm" height="25.0mm"')
    d = re.search(r' d="([^"]+)"', svg).group(1)
    runs = tuple((int(x), int(y), int(n)) for x, y, n in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", d))
    assert runs == qr.encode(unit.url).runs
    assert f">SN {unit.serial}</text>" in svg and ">(01) 09506000134352</text>" in svg
