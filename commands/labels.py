"""``tagsmith labels``: QR door labels as PDF sheets and rolls, ZPL for Zebra printers, previews, checks.

The group never creates a batch database: without one, its commands say so (exit 8).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tagsmith import VerificationError
from tagsmith.commands.context import checked_out, opened, provide
from tagsmith.commands.options import ForceOpt, JsonFlag
from tagsmith.commands.output import emit, esc, folding_table, print_line, print_table, progress_bar

labels_app = typer.Typer(help="QR door labels: PDF sheets and rolls, ZPL for Zebra printers, previews, checks.",
                         no_args_is_help=True)
LabelBatchOpt = Annotated[str, typer.Option("--batch", help="Batch id.")]
SerialRangeOpt = Annotated[str | None, typer.Option("--serials", help="Only units FROM..TO (batch order, inclusive).")]


@labels_app.callback()
def _labels(ctx: typer.Context) -> None:
    provide(ctx, create_store=False)


def _print_summary(run: Any) -> str:
    if run.result is None:
        text = "nothing to print"
    else:
        outputs = run.result.outputs
        text = (f"wrote {run.result.labels} label(s) to {esc(', '.join(outputs[:3]))}" + (" ..." if len(outputs) > 3 else "")
                + f" with layout {esc(run.layout.name)}" + (" (a proof: not counted as printed)" if run.proof else ""))
    skipped = run.selection.already_printed
    return text + (f"; skipped {skipped} already printed (--reprint to include them)" if skipped else "")


@labels_app.command("print")
def labels_print(
    ctx: typer.Context,
    batch: LabelBatchOpt,
    out: Annotated[str, typer.Option("--out", help="Output file (zpl: also tcp://HOST:9100 or a device such as /dev/usb/lp0).")],
    layout: Annotated[str | None, typer.Option("--layout", help="Layout name or TOML file (default: the product's).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="pdf | zpl | png | svg (png/svg: previews, one file per label).")] = "pdf",
    serials: SerialRangeOpt = None,
    reprint: Annotated[bool, typer.Option("--reprint", help="Also print units that have a label already.")] = False,
    proof: Annotated[bool, typer.Option(
        "--proof", help="A proof to look at, not the print: recorded as a proof, so a later print run still prints "
                        "these units (a PDF of a roll layout is always a proof).")] = False,
    dpi: Annotated[int | None, typer.Option("--dpi", help="Printer dpi for zpl (203 or 300); pixel dpi for png.")] = None,
    force: ForceOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Print the labels of a batch (or a serial range); pdf and zpl prints and proofs are recorded per unit."""
    from tagsmith.labels.jobs import check_format
    from tagsmith.provision.labelprint import print_labels

    check_format(fmt)
    if not out.strip():
        checked_out(ctx, out, force)  # one line: an empty --out names nothing
    run = print_labels(opened(ctx).store, batch, out, layout=layout, fmt=fmt, serials=serials, reprint=reprint,
                       proof=proof, dpi=dpi, check=lambda path: checked_out(ctx, path, force))
    result = run.result
    data = {"batch": batch, "layout": run.layout.name, "format": fmt, "proof": run.proof,
            "labels": result.labels if result else 0, "pages": result.pages if result else 0,
            "outputs": list(result.outputs) if result else [],
            "skipped_already_printed": run.selection.already_printed, "recorded": run.recorded}
    emit(data, as_json, lambda: print_line(_print_summary(run)))


def _print_check_problems(report: Any) -> None:
    for title, items in (("missing", report.missing), ("duplicated", list(report.duplicates)),
                         ("unknown", list(report.unknown))):
        if items:
            print_line(f"{title}: {esc(', '.join(items[:20]))}" + (" ..." if len(items) > 20 else ""))


@labels_app.command("check")
def labels_check(
    ctx: typer.Context,
    pdf: Annotated[Path, typer.Argument(help="Label PDF to rasterise and decode.")],
    batch: LabelBatchOpt,
    serials: SerialRangeOpt = None,
    layout: Annotated[str | None, typer.Option(
        "--layout", help="Layout the PDF was printed with (default: the product's): each cell is decoded.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Decode every QR in a label PDF and compare with the batch: each unit exactly once; exit 6 if not."""
    from tagsmith.labels.check import check_pdf
    from tagsmith.labels.layouts import load_layout
    from tagsmith.provision.labelprint import batch_labels

    product, units = batch_labels(opened(ctx).store, batch, serials)
    lay = load_layout(layout or product.label_layout)
    with progress_bar(enabled=not as_json) as progress:
        report = check_pdf(pdf, {d.url: d.serial for _, d in units}, lay, progress)
    data = {"batch": batch, "pdf": str(pdf), **report.to_dict()}
    if not report.ok:
        emit(data, as_json, lambda: _print_check_problems(report))
        raise VerificationError(f"label check of {pdf} failed: {len(report.missing)} missing, "
                                f"{len(report.duplicates)} duplicated, {len(report.unknown)} unknown "
                                f"({report.decoded} decoded, {report.expected} expected)")
    emit(data, as_json, lambda: print_line(
        f"[green]ok[/] {len(report.found)} unit(s) of batch {esc(batch)}, each exactly once, on {report.pages} page(s)"))


def _render_layouts(rows: list[dict[str, Any]]) -> None:
    table = folding_table("layout", "kind", "label mm", "grid", "QR area mm", "max QR version", "stock")
    for r in rows:
        table.add_row(esc(r["name"]), esc(r["kind"]), "x".join(f"{v:g}" for v in r["label_mm"]),
                      "x".join(map(str, r["grid"])), f"{r['qr_area_mm']:g}",
                      f"{r['max_qr_version']}-{esc(r['error'])}" + (f" @{r['dpi']} dpi" if r["dpi"] else ""),
                      esc(r["stock"]))
    print_table(table)


@labels_app.command("layouts")
def labels_layouts(as_json: JsonFlag = False) -> None:
    """List the shipped label layouts with their geometry."""
    from tagsmith.labels.layouts import load_layout, shipped_layouts

    rows = [load_layout(name).summary() for name in shipped_layouts()]
    emit(rows, as_json, lambda: _render_layouts(rows))
