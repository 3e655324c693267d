"""Benchmark: 10,000 labels to one PDF with tagsmith vs reportlab's own QrCodeWidget; 100,000 ZPL labels;
``labels check`` per label on an A4 24-up sheet and on a roll, in the same run.

Run: ``.venv/bin/python bench/labels.py [--labels 10000] [--zpl 100000] [--layout roll-50x25] [--check 480]``
(``--check-only`` runs just the last part). Both PDFs use the same layout, URLs, EC level M, text and
placement; only the QR drawing differs: tagsmith (segno with mask 0 + its own mask selection ->
merged runs written as PDF operators; once in one process, the default, and once spread over all
CPUs) vs ``QrCodeWidget`` drawn with ``renderPDF.draw``. The check decodes each label cell first
and whole pages only where something is missing; the target is an A4 sheet at no more than 1.5x
the per-label time of a roll.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from tagsmith.labels import qr
from tagsmith.labels.layouts import load_layout
from tagsmith.labels.model import LabelData
from tagsmith.labels.pdf import render_pdf
from tagsmith.labels.place import place_label, place_qr
from tagsmith.labels.zpl import render_zpl


def units(n: int) -> list[LabelData]:
    return [LabelData(url=f"https://id.example.com/01/09506000134352/21/DW6{i:07d}K", serial=f"DW6{i:07d}K",
                      model="DW-600", gtin="09506000134352", name="Aurora DW-600 Dishwasher",
                      extra_text="Scan for manuals") for i in range(n)]


def baseline_pdf(labels: list[LabelData], layout_name: str, out: Path) -> None:
    """The same labels with reportlab's QrCodeWidget (barLevel M, 4-module border) for the QR."""
    layout = load_layout(layout_name)
    canvas = Canvas(str(out), pagesize=(layout.page_width * mm, layout.page_height * mm), pageCompression=1)
    for i, data in enumerate(labels):
        if i and i % layout.per_page == 0:
            canvas.showPage()
        x, y = layout.origin(i)
        top = layout.page_height - y
        fit = layout.fit(qr.plan(data.url))  # same box as tagsmith's (text placement needs it)
        label = place_label(layout, data, place_qr(layout, fit))
        widget = QrCodeWidget(data.url, barLevel="M", barBorder=4)
        widget.barWidth = widget.barHeight = layout.qr.size * mm
        drawing = Drawing(layout.qr.size * mm, layout.qr.size * mm)
        drawing.add(widget)
        renderPDF.draw(drawing, canvas, (x + layout.qr.x) * mm, (top - layout.qr.y - layout.qr.size) * mm)
        for text in label.texts:
            canvas.setFont(text.font, text.size)
            canvas.drawString((x + text.x) * mm, (top - text.y) * mm, text.text)
    canvas.showPage()
    canvas.save()


def timed(what: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{what}: {seconds:.2f} s", flush=True)
    return seconds


CHECK_LAYOUTS = ("a4-24up-70x37", "roll-50x25")


def bench_check(n: int) -> None:
    """``labels check`` of ``n`` labels on an A4 24-up sheet and on a roll: seconds per label, and the ratio."""
    from tagsmith.labels.check import TOOLS, check_pdf

    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"labels check: skipped ({', '.join(missing)} not installed)")
        return
    labels = units(n)
    expected = {d.url: d.serial for d in labels}
    per_label = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CHECK_LAYOUTS:
            layout = load_layout(name)
            pdf = Path(tmp) / f"{name}.pdf"
            render_pdf(labels, layout, pdf)
            start = time.perf_counter()
            report = check_pdf(pdf, expected, layout)
            seconds = time.perf_counter() - start
            assert report.ok, report.to_dict()
            per_label[name] = seconds / n
            print(f"labels check {name}: {n} labels on {report.pages} page(s) in {seconds:.2f} s, "
                  f"{per_label[name] * 1000:.1f} ms per label, {report.passes} pass(es)", flush=True)
    sheet, roll = (per_label[name] for name in CHECK_LAYOUTS)
    print(f"labels check: A4 sheet {sheet / roll:.2f}x the per-label time of a roll (target <= 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=10_000)
    parser.add_argument("--zpl", type=int, default=100_000)
    parser.add_argument("--layout", default="roll-50x25")
    parser.add_argument("--check", type=int, default=480, help="labels for the labels-check figures (0: skip)")
    parser.add_argument("--check-only", action="store_true", help="only the labels-check figures")
    args = parser.parse_args()
    if args.check_only:
        bench_check(args.check)
        return
    layout = load_layout(args.layout)
    labels = units(args.labels)
    print(f"{args.labels} labels, layout {args.layout}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        ours = timed(f"tagsmith PDF (encoding in {os.cpu_count()} processes)",
                     lambda: render_pdf(labels, layout, Path(tmp) / "a.pdf", workers=os.cpu_count() or 1))
        one = timed("tagsmith PDF (one CPU)", lambda: render_pdf(labels, layout, Path(tmp) / "b.pdf", workers=1))
        base = timed("reportlab QrCodeWidget PDF", lambda: baseline_pdf(labels, args.layout, Path(tmp) / "c.pdf"))
        sizes = {k: (Path(tmp) / f"{k}.pdf").stat().st_size / 1e6 for k in "abc"}
        print(f"PDF sizes: tagsmith {sizes['a']:.1f} MB, baseline {sizes['c']:.1f} MB")
        print(f"ratio: {base / one:.1f}x faster (one process), {base / ours:.1f}x faster (all CPUs); target >= 6x")
        zpl_units = units(args.zpl)
        out = Path(tmp) / "labels.zpl"

        def write_zpl() -> None:
            with open(out, "w", encoding="utf-8") as f:
                f.writelines(render_zpl(zpl_units, layout, 203))

        z = timed(f"ZPL {args.zpl} labels", write_zpl)
        print(f"ZPL: {args.zpl / z:,.0f} labels/s, {out.stat().st_size / 1e6:.1f} MB")
    if args.check:
        bench_check(args.check)


if __name__ == "__main__":
    main()
