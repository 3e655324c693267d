"""A print job: which units get a label (range, reprints) and one entry point per output format.

Takes plain ``(unit id, LabelData)`` pairs and a "was it printed?" callback, so the labels layer
stays free of the database; the CLI (or the station) supplies both from the batch store. A proof
(see :func:`is_proof`) is recorded apart from prints, so it never makes a later print run skip a unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tagsmith import ConfigError, NotFoundError

from .layouts import Layout
from .model import LabelData

FORMATS = ("pdf", "zpl", "png", "svg")


@dataclass(frozen=True)
class PrintSelection:
    items: tuple[tuple[int, LabelData], ...]  # (unit id, label) in batch order
    already_printed: int  # units skipped because they have a label already (no --reprint)


@dataclass(frozen=True)
class RenderResult:
    format: str
    outputs: tuple[str, ...]  # files written (or the printer target)
    labels: int
    pages: int = 0


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    return fmt


def is_proof(fmt: str, layout: Layout, asked: bool = False) -> bool:
    """Whether a run is a proof (recorded, but its units still count as unprinted) rather than the print.

    Asked for with ``--proof``; and a PDF of a roll layout is always one: roll stock goes through a
    label printer in ZPL, so its PDF can only be looked at. A PDF of a sheet layout is the print
    (sheets are printed from the PDF).
    """
    return asked or (fmt == "pdf" and layout.kind == "roll")


def parse_serial_range(text: str) -> tuple[str, str]:
    """``FROM..TO`` (inclusive, in batch order); a single serial means just that unit."""
    first, sep, last = text.partition("..")
    first, last = first.strip(), (last.strip() if sep else first.strip())
    if not first or not last:
        raise ConfigError(f"serial range {text!r}: expected FROM..TO")
    return first, last


def select_for_print(units: Iterable[tuple[int, LabelData]], serial_range: tuple[str, str] | None = None,
                     reprint: bool = False, printed: Callable[[int], bool] = lambda unit_id: False) -> PrintSelection:
    """Units of a batch to label: those in the range, minus the ones printed before unless reprinting."""
    chosen = list(units)
    if serial_range is not None:
        serials = [d.serial for _, d in chosen]
        missing = [s for s in serial_range if s not in serials]
        if missing:
            raise NotFoundError(f"serial {missing[0]} is not an encoded unit of this batch")
        a, b = sorted(serials.index(s) for s in serial_range)
        chosen = chosen[a:b + 1]
    if reprint:
        return PrintSelection(tuple(chosen), 0)
    fresh = [(uid, d) for uid, d in chosen if not printed(uid)]
    return PrintSelection(tuple(fresh), len(chosen) - len(fresh))


def render(labels: Sequence[LabelData], layout: Layout, fmt: str, out: str | Path,
           dpi: int | None = None) -> RenderResult:
    """Write labels in one format: a PDF, a ZPL file or printer, or one PNG/SVG preview per label.

    ``dpi``: ZPL printer resolution (default 203); PNG resolution (default 300); PDF module snapping.
    """
    check_format(fmt)
    if fmt == "pdf":
        from .pdf import render_pdf

        result = render_pdf(labels, layout, Path(out), dpi=dpi)
        return RenderResult(fmt, (str(out),), result.labels, result.pages)
    if fmt == "zpl":
        from .printer import print_zpl
        from .zpl import render_zpl

        zpl = list(render_zpl(labels, layout, dpi or 203))
        target = str(out)
        if target.startswith(("tcp://", "/dev/")):
            print_zpl(target, zpl)
        else:
            Path(out).write_text("".join(zpl), encoding="utf-8")
        return RenderResult(fmt, (target,), len(zpl))
    from .preview import write_preview

    path = Path(out)
    paths = [path] if len(labels) == 1 else [path.with_name(f"{path.stem}-{d.serial}{path.suffix}") for d in labels]
    for data, target_path in zip(labels, paths):
        write_preview(data, layout, target_path, fmt, dpi=dpi or 300)
    return RenderResult(fmt, tuple(map(str, paths)), len(labels))
