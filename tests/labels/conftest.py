"""Fixtures for the label tests: synthetic units with realistic Digital Link URLs, and the tools check."""

from __future__ import annotations

import os
import shutil

import pytest

from tagsmith.labels.model import LabelData

GTIN = "09506000134352"
TOOLS = ("pdftoppm", "pdfinfo", "zbarimg")


def _make_units(n: int, host: str = "id.example.com", lot_every: int = 3) -> list[LabelData]:
    """``n`` units with upper-case serials; every ``lot_every``-th one carries a lot in its URL."""
    units = []
    for i in range(n):
        serial = f"DW6A{i:05d}K"
        lot = "B2026W47" if lot_every and i % lot_every == 1 else None
        path = f"/01/{GTIN}" + (f"/10/{lot}" if lot else "") + f"/21/{serial}"
        units.append(LabelData(url=f"https://{host}{path}", serial=serial, model="WM-8000",
                               gtin=GTIN, name="Front-loading washer 8 kg", lot=lot,
                               extra_text="Scan for manuals" if i % 2 else None))
    return units


@pytest.fixture
def make_units():
    """Factory: ``make_units(n, host=..., lot_every=...)`` (test modules cannot import conftest)."""
    return _make_units


@pytest.fixture(scope="session")
def label_tools() -> None:
    """pdftoppm/pdfinfo (poppler-utils) and zbarimg (zbar-tools): run when present, fail in CI when not."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        message = f"missing {', '.join(missing)}: ./dev test installs poppler-utils and zbar-tools"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
