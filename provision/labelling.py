"""Door labels for units: build a unit's label data, and print it at the station as it is encoded."""

from __future__ import annotations

from tagsmith.batches.gs1 import UnitUrls
from tagsmith.batches.product import Product
from tagsmith.batches.store import Store
from tagsmith.labels.layouts import load_layout
from tagsmith.labels.model import LabelData
from tagsmith.labels.printer import print_zpl
from tagsmith.labels.zpl import render_zpl

from .encode import Outcome


class UnitLabels:
    """What one product's door label says for a serial (the URL prefix is built once per batch)."""

    def __init__(self, product: Product, lot: str | None = None) -> None:
        self.product, self.lot = product, lot
        self.urls = UnitUrls(product.resolver, product.gtin, lot if product.lot_in_url else None)

    def label(self, serial: str) -> LabelData:
        p = self.product
        return LabelData(url=self.urls(serial), serial=serial, model=p.model, gtin=p.gtin, name=p.name, lot=self.lot)


class StationLabeller:
    """ZPL for one unit at a time to a file, device or tcp://HOST:9100 printer."""

    def __init__(self, store: Store, product: Product, target: str, layout: str | None, dpi: int,
                 lot: str | None = None) -> None:
        self.store, self.target, self.dpi = store, target, dpi
        self.labels = UnitLabels(product, lot)
        self.layout = load_layout(layout or product.label_layout)

    def print_unit(self, outcome: Outcome) -> None:
        """Send the label, then record it (a failed print raises and leaves no record)."""
        if outcome.serial is None:
            return
        print_zpl(self.target, list(render_zpl([self.labels.label(outcome.serial)], self.layout, dpi=self.dpi)))
        unit = self.store.unit_by_serial(outcome.serial)
        if unit is not None:
            self.store.record_label_print(unit.id, self.layout.name, "zpl", station=None)
