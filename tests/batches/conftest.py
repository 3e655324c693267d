"""Fixtures for the batches tests: a product file, a database, an Ed25519 manifest key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagsmith.batches.db import BatchStore
from tagsmith.batches.manifest import ed25519_signer, generate_ed25519
from tagsmith.batches.product import load_product

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"


@pytest.fixture
def product():
    return load_product(DISHWASHER)


@pytest.fixture
def store(tmp_path, product):
    with BatchStore(tmp_path / "db" / "tagsmith.db") as s:
        s.add_product(product)
        yield s


@pytest.fixture(scope="session")
def keypair():
    """(signer, public PEM, private PEM) of a throwaway manifest key."""
    private, _ = generate_ed25519()
    signer, public = ed25519_signer(private)
    return signer, public, private


@pytest.fixture
def encode_units():
    return _encode_units


def _encode_units(store, batch_id, count, start=0, station="st-1", verify_every=2):
    """Allocate and encode ``count`` chips with UIDs 04 00.. start+i; verify and QA some."""
    units = []
    for i in range(start, start + count):
        unit = store.allocate_unit(batch_id, bytes([4, 0, 0, 0]) + i.to_bytes(3, "big"), station)
        unit = store.mark_encoded(unit.id, {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, 5 + i, station)
        if verify_every and i % verify_every == 0:
            unit = store.mark_verified(unit.id, 6 + i, station)
            unit = store.record_qa(unit.id, passed=i % 4 == 0)
        units.append(unit)
    return units
