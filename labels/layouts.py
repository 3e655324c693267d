"""Named label layouts (TOML): page and label geometry, the QR area, text lines and an optional logo.

Shipped layouts live in ``labels/layouts/*.toml``; a line engineer can also point at their own
file. All lengths are millimetres measured from the top-left corner; font sizes are points.
Sheet geometry follows the gLabels template data in docs/reference/labels-gs1.md §4.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tagsmith import ConfigError, NotFoundError
from tagsmith.limits import SMALL_FILE_BYTES, check_text, loads_toml, read_text_limited

from .model import TEXT_FIELDS
from .qr import MAX_MODULE_MM, MIN_MODULE_MM, QUIET_ZONE, QrPlan, check_error_level

_EPS = 0.01  # mm: tolerance for geometry that is meant to touch an edge


@dataclass(frozen=True)
class QrArea:
    """Where the QR goes on a label: a square including the 4-module quiet zone."""

    x: float
    y: float
    size: float
    error: str = "M"
    min_module: float = MIN_MODULE_MM
    max_module: float = MAX_MODULE_MM
    compact: bool = True


@dataclass(frozen=True)
class TextLine:
    """One line of text; ``text`` may name fields as ``{serial}``, ``{model}``, ``{gtin}``...

    ``y`` is the baseline. A line whose fields are all empty for a unit is left out.
    """

    text: str
    x: float
    y: float
    size: float = 8.0
    bold: bool = False
    align: str = "left"
    width: float | None = None  # room for the text; by default up to the label's right edge

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f for _, f, _, _ in string.Formatter().parse(self.text) if f)


@dataclass(frozen=True)
class Logo:
    path: Path
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class QrFit:
    """How a planned symbol lands in a layout's QR area."""

    module: float  # mm per module
    side: float  # mm of the symbol including its quiet zone


@dataclass(frozen=True)
class Layout:
    """A label stock and what goes where on each label."""

    name: str
    description: str
    kind: str  # "sheet" or "roll"
    page_width: float
    page_height: float
    label_width: float
    label_height: float
    columns: int
    rows: int
    left: float
    top: float
    h_gap: float
    v_gap: float
    qr: QrArea
    text: tuple[TextLine, ...]
    logo: Logo | None = None
    dpi: int | None = None  # thermal rolls: modules snap to whole printer dots
    stock: str = ""
    source: str = ""

    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    def origin(self, index: int) -> tuple[float, float]:
        """Top-left corner (mm) of the label at position ``index`` on its page, row by row."""
        row, col = divmod(index % self.per_page, self.columns)
        return (self.left + col * (self.label_width + self.h_gap), self.top + row * (self.label_height + self.v_gap))

    def fit(self, plan: QrPlan, dpi: int | None = None) -> QrFit:
        """Module size for a symbol in this layout, or ConfigError saying what is needed vs available."""
        total = plan.modules + 2 * QUIET_ZONE
        module = min(self.qr.size / total, self.qr.max_module)
        dpi = dpi or self.dpi
        if dpi:
            dot = 25.4 / dpi
            module = math.floor(module / dot + 1e-9) * dot
        if module < self.qr.min_module - 1e-9:
            at = f" at {dpi} dpi ({math.ceil(self.qr.min_module * dpi / 25.4)} dots per module)" if dpi else ""
            raise ConfigError(
                f"layout {self.name!r} cannot fit a scannable QR for {plan.url}: version {plan.version}-{plan.error} is "
                f"{plan.modules} modules + {2 * QUIET_ZONE} quiet-zone modules, which needs "
                f"{total * self._min_module(dpi):.2f} mm at the minimum module of {self.qr.min_module} mm{at}; "
                f"the layout's QR area is {self.qr.size:.2f} mm")
        return QrFit(module=module, side=module * total)

    def _min_module(self, dpi: int | None) -> float:
        if not dpi:
            return self.qr.min_module
        dot = 25.4 / dpi
        return math.ceil(self.qr.min_module / dot - 1e-9) * dot

    def max_version(self, dpi: int | None = None) -> int:
        """The largest QR version that fits the QR area (0 if none)."""
        module = self._min_module(dpi or self.dpi)
        modules = int(self.qr.size / module + 1e-9) - 2 * QUIET_ZONE
        return max(0, min(40, (modules - 17) // 4))

    def summary(self) -> dict[str, Any]:
        """Geometry for listings (``tagsmith labels layouts``)."""
        return {
            "name": self.name, "kind": self.kind, "description": self.description, "stock": self.stock,
            "page_mm": [self.page_width, self.page_height], "label_mm": [self.label_width, self.label_height],
            "grid": [self.columns, self.rows], "per_page": self.per_page, "qr_area_mm": self.qr.size,
            "error": self.qr.error, "dpi": self.dpi, "max_qr_version": self.max_version(),
        }


def shipped_layouts() -> list[str]:
    """Names of the layouts that ship with tagsmith."""
    folder = resources.files("tagsmith.labels") / "layouts"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_layout(name_or_path: str | Path) -> Layout:
    """Load a shipped layout by name, or a layout TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise NotFoundError(f"layout file {path} does not exist")
        text = read_text_limited(path, SMALL_FILE_BYTES, "layout file")
        return parse_layout(text, path.stem, path.resolve().parent, str(path))
    resource = resources.files("tagsmith.labels") / "layouts" / f"{name_or_path}.toml"
    if not resource.is_file():
        raise NotFoundError(f"no layout named {str(name_or_path)!r}; shipped: {', '.join(shipped_layouts())}")
    return parse_layout(resource.read_text(encoding="utf-8"), str(name_or_path), None, f"shipped:{name_or_path}")


def parse_layout(text: str, name: str, base: Path | None = None, source: str = "") -> Layout:
    """Parse and check a layout from TOML text; ``base`` resolves a relative logo path."""
    doc = loads_toml(text, f"layout {name!r}")
    name = doc.get("name", name)
    reader = _Reader(name)
    page, labels, qr = (reader.table(doc, key) for key in ("page", "labels", "qr"))
    reader.only(doc, {"name", "description", "kind", "stock", "dpi", "page", "labels", "qr", "text", "logo"}, "")
    reader.only(page, {"width", "height"}, "page")
    reader.only(labels, {"width", "height", "columns", "rows", "left", "top", "h_gap", "v_gap"}, "labels")
    reader.only(qr, {"x", "y", "size", "error", "min_module", "max_module", "compact"}, "qr")
    layout = Layout(
        name=name, description=str(doc.get("description", "")), kind=str(doc.get("kind", "sheet")),
        page_width=reader.num(page, "width"), page_height=reader.num(page, "height"),
        label_width=reader.num(labels, "width"), label_height=reader.num(labels, "height"),
        columns=int(reader.num(labels, "columns", 1)), rows=int(reader.num(labels, "rows", 1)),
        left=reader.num(labels, "left", 0.0, zero=True), top=reader.num(labels, "top", 0.0, zero=True),
        h_gap=reader.num(labels, "h_gap", 0.0, zero=True), v_gap=reader.num(labels, "v_gap", 0.0, zero=True),
        qr=QrArea(x=reader.num(qr, "x", zero=True), y=reader.num(qr, "y", zero=True), size=reader.num(qr, "size"),
                  error=reader.wrap(check_error_level, str(qr.get("error", "M"))),
                  min_module=reader.num(qr, "min_module", MIN_MODULE_MM),
                  max_module=reader.num(qr, "max_module", MAX_MODULE_MM), compact=bool(qr.get("compact", True))),
        text=tuple(_text_line(reader, t) for t in doc.get("text", [])),
        logo=_logo(reader, doc.get("logo"), base),
        dpi=int(reader.num(doc, "dpi")) if doc.get("dpi") else None, stock=str(doc.get("stock", "")), source=source,
    )
    _check_geometry(layout)
    return layout


class _Reader:
    """Typed access to TOML tables with errors that name the layout and the key."""

    def __init__(self, layout: str) -> None:
        self.layout = layout

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"layout {self.layout!r}: {message}")

    def table(self, doc: dict[str, Any], key: str) -> dict[str, Any]:
        value = doc.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"missing [{key}] table")
        return value

    def only(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(f"unknown key(s) {', '.join(unknown)}" + (f" in [{where}]" if where else ""))

    def num(self, table: dict[str, Any], key: str, default: float | None = None, zero: bool = False) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"{key} must be a finite number, got {value!r}")
        if value < 0 or (value == 0 and not zero):
            raise self.fail(f"{key} must be {'>= 0' if zero else '> 0'}, got {value}")
        return float(value)

    def wrap(self, check: Any, value: Any) -> Any:
        try:
            return check(value)
        except ConfigError as exc:
            raise self.fail(str(exc)) from None


def _text_line(reader: _Reader, table: dict[str, Any]) -> TextLine:
    reader.only(table, {"text", "x", "y", "size", "bold", "align", "width"}, "text")
    line = TextLine(text=reader.wrap(lambda t: check_text(t, "text line"), str(table.get("text", ""))),
                    x=reader.num(table, "x", zero=True), y=reader.num(table, "y"),
                    size=reader.num(table, "size", 8.0), bold=bool(table.get("bold", False)),
                    align=str(table.get("align", "left")),
                    width=reader.num(table, "width") if "width" in table else None)
    try:
        fields = line.fields
    except ValueError as exc:
        raise reader.fail(f"text {line.text!r}: {exc}") from None
    bad = [f for f in fields if f not in TEXT_FIELDS]
    if bad:
        raise reader.fail(f"text {line.text!r} names unknown field(s) {', '.join(bad)}; known: {', '.join(TEXT_FIELDS)}")
    if line.align not in ("left", "center"):
        raise reader.fail(f"text {line.text!r}: align must be left or center")
    return line


def _logo(reader: _Reader, table: Any, base: Path | None) -> Logo | None:
    if table is None:
        return None
    reader.only(table, {"path", "x", "y", "width", "height"}, "logo")
    path = Path(str(table.get("path", "")))
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise reader.fail(f"logo {path} does not exist")
    return Logo(path=path, x=reader.num(table, "x", zero=True), y=reader.num(table, "y", zero=True),
                width=reader.num(table, "width"), height=reader.num(table, "height"))


def _check_geometry(layout: Layout) -> None:
    """Refuse layouts whose labels leave the page or whose parts leave the label."""
    fail = _Reader(layout.name).fail
    if layout.kind not in ("sheet", "roll"):
        raise fail(f"kind must be sheet or roll, got {layout.kind!r}")
    right = layout.left + layout.columns * layout.label_width + (layout.columns - 1) * layout.h_gap
    bottom = layout.top + layout.rows * layout.label_height + (layout.rows - 1) * layout.v_gap
    if right > layout.page_width + _EPS or bottom > layout.page_height + _EPS:
        raise fail(f"{layout.columns} x {layout.rows} labels need {right:.2f} x {bottom:.2f} mm, "
                   f"the page is {layout.page_width} x {layout.page_height} mm")
    q = layout.qr
    if q.x + q.size > layout.label_width + _EPS or q.y + q.size > layout.label_height + _EPS:
        raise fail(f"QR area ({q.x}, {q.y}) size {q.size} mm leaves the {layout.label_width} x "
                   f"{layout.label_height} mm label")
    if layout.max_version() < 1:
        raise fail(f"QR area {q.size} mm cannot hold even a version-1 QR (21 + 8 modules) at "
                   f"{q.min_module} mm per module: needs {29 * layout._min_module(None):.2f} mm")
    for line in layout.text:
        if not (0 <= line.x < layout.label_width and 0 < line.y <= layout.label_height + _EPS):
            raise fail(f"text {line.text!r} at ({line.x}, {line.y}) is outside the label")
        if q.x <= line.x < q.x + q.size and q.y < line.y < q.y + q.size:
            raise fail(f"text {line.text!r} at ({line.x}, {line.y}) starts inside the QR area")
    logo = layout.logo
    if logo and (logo.x + logo.width > layout.label_width + _EPS or logo.y + logo.height > layout.label_height + _EPS):
        raise fail(f"logo {logo.width} x {logo.height} mm at ({logo.x}, {logo.y}) leaves the label")
