"""Fixtures for the batches tests: a product file, a database on each engine, an Ed25519 manifest key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tagsmith.batches.product import load_product
from tagsmith.batches.store import open_store
from tagsmith.keystore.signing import ed25519_signer, generate_ed25519
from tagsmith.workspace import Workspace

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"


@pytest.fixture
def product():
    return load_product(DISHWASHER)


@dataclass(frozen=True)
class StoreHome:
    """Where a test's store lives: its workspace, and on PostgreSQL the database's URL."""

    workspace: Workspace
    url: str | None

    def open(self, **options):
        return open_store(self.workspace, url=self.url, **options)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_home(request, tmp_path):
    """The ``store`` fixture's engine: the workspace's SQLite file, or a fresh database of the private cluster."""
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    return StoreHome(Workspace(tmp_path / "db"), url)


@pytest.fixture
def store(store_home, product):
    """The store every store test runs on, once per engine (another process opens it again from ``store_home``)."""
    with store_home.open() as s:
        s.add_product(product)
        yield s


@pytest.fixture
def sqlite_store(tmp_path, product):
    """The SQLite engine only: for what only it has (PRAGMAs, the WAL and its fsync)."""
    with open_store(Workspace(tmp_path / "db")) as s:
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
