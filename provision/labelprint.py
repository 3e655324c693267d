"""A batch's door labels: which units get one, rendered with the layout, and each print recorded on its unit.

Printing (pdf, zpl) is recorded per unit, so a later run skips what is printed unless reprinting;
a proof is recorded as a proof (a later print still prints those units); a png/svg preview is not
recorded at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith.batches.records import DONE
from tagsmith.labels import jobs
from tagsmith.labels.layouts import Layout, load_layout
from tagsmith.provision.labelling import UnitLabels
from tagsmith.provision.outputs import write_file

PREVIEW_FORMATS = ("png", "svg")


@dataclass(frozen=True)
class LabelRun:
    """What one ``labels print`` did: the layout, whether it was a proof, what was rendered and recorded."""

    layout: Layout
    proof: bool
    selection: jobs.PrintSelection
    result: jobs.RenderResult | None
    recorded: int


def batch_labels(store: Any, batch_id: str, serials: str | None) -> tuple[Any, list[tuple[int, Any]]]:
    """The batch's product and (unit id, LabelData) of its encoded/verified units, in batch order."""
    batch, product = store.batch(batch_id), store.batch_product(batch_id)
    labels = UnitLabels(product, batch.lot)
    units = [(u.id, labels.label(u.serial)) for u in store.units(batch_id, DONE)]
    if serials:
        units = list(jobs.select_for_print(units, jobs.parse_serial_range(serials), reprint=True).items)
    return product, units


def print_labels(store: Any, batch_id: str, out: str, *, layout: str | None, fmt: str, serials: str | None,
                 reprint: bool, proof: bool, dpi: int | None, check: Callable[[Any], Path]) -> LabelRun:
    """Render the labels not printed yet (all with ``reprint``) to ``out``; record the print or proof per unit."""
    preview = fmt in PREVIEW_FORMATS
    product, units = batch_labels(store, batch_id, serials)
    lay = load_layout(layout or product.label_layout)
    proof = not preview and jobs.is_proof(fmt, lay, proof)
    chosen = jobs.select_for_print(units, reprint=reprint or preview or proof, printed=store.label_printed)
    result = jobs.render([d for _, d in chosen.items], lay, fmt, out, dpi, write=write_file,
                         check=check) if chosen.items else None
    if result is None or preview:
        return LabelRun(lay, proof, chosen, result, recorded=0)
    for unit_id, _ in chosen.items:
        store.record_label_print(unit_id, lay.name, fmt, proof=proof)
    return LabelRun(lay, proof, chosen, result, recorded=result.labels)
