"""A print job: which units get a label (range, reprints) and one entry point per output format.

Takes plain ``(unit id, LabelData)`` pairs and a "was it printed?" callback, so the labels layer
stays free of the database; the CLI (or the station) supplies both from the batch store. A proof
(see :func:`is_proof`) is recorded apart from prints, so it never makes a later print run skip a unit.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
           dpi: int | None = None, *, check: Callable[[Path], Path] = lambda path: path,
           write: Callable[[Path, bytes], object] = lambda path, data: path.write_bytes(data)) -> RenderResult:
    """Write labels in one format: a PDF, a ZPL file or printer, or one PNG/SVG preview per label.

    Every file goes through ``check`` (all of them before the first is written) and is written with
    ``write``: the CLI passes its output guard and an atomic write. A ZPL target that is a printer
    (``tcp://`` or a character device such as /dev/usb/lp0) is sent to, not written as a file.
    ``dpi``: ZPL printer resolution (default 203); PNG resolution (default 300); PDF module snapping.
    """
    check_format(fmt)
    if fmt == "zpl":
        from .printer import is_printer_target, print_zpl
        from .zpl import render_zpl

        target = str(out)
        printer = is_printer_target(target)
        path = None if printer else check(Path(out))
        zpl = list(render_zpl(labels, layout, dpi or 203))
        if path is None:
            print_zpl(target, zpl)
        else:
            write(path, "".join(zpl).encode("utf-8"))
        return RenderResult(fmt, (target,), len(zpl))
    if fmt == "pdf":
        from .pdf import render_pdf

        path = check(Path(out))
        buffer = io.BytesIO()
        result = render_pdf(labels, layout, buffer, dpi=dpi)
        write(path, buffer.getvalue())
        return RenderResult(fmt, (str(out),), result.labels, result.pages)
    from .preview import preview_bytes

    path = Path(out)
    paths = [path] if len(labels) == 1 else [path.with_name(f"{path.stem}-{d.serial}{path.suffix}") for d in labels]
    checked = [check(p) for p in paths]
    for data, target_path in zip(labels, checked, strict=True):
        write(target_path, preview_bytes(data, layout, fmt, dpi=dpi or 300))
    return RenderResult(fmt, tuple(map(str, paths)), len(labels))
