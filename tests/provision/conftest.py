"""Station fixtures: a ready encoding context (workspace, keystore, product, key set, minted batch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import tagsmith.batches as _batches
from tagsmith.batches.product import Product, load_product
from tagsmith.batches.store import Store, open_store
from tagsmith.keystore import init_keystore
from tagsmith.provision.encode import EncodeContext
from tagsmith.workspace import Workspace

PASSPHRASE = "station-test-pass-123"
DISHWASHER = Path(_batches.__file__).parent / "products" / "dishwasher.toml"


@dataclass
class StationWorld:
    """A workspace with one product, its key set and one minted batch; ``context()`` makes stations."""

    workspace: Workspace
    keys: object
    product: Product
    store: Store
    batch_id: str

    def context(self, station: str = "st1", *, batch_id: str | None = None, store: Store | None = None,
                allow_simulator_signature: bool = True) -> EncodeContext:
        return EncodeContext(store=store or self.store, keys=self.keys, product=self.product,
                             batch_id=batch_id or self.batch_id, station=station,
                             allow_simulator_signature=allow_simulator_signature)

    def new_batch(self, quantity: int) -> str:
        return self.store.create_batch(self.product.id, quantity).id


def make_world(home: Path, quantity: int = 200) -> StationWorld:
    workspace = Workspace.resolve(home)
    keys = init_keystore(workspace, "file", passphrase=PASSPHRASE, scrypt_n=2**10)
    product = load_product(DISHWASHER)
    keys.create_key_set(product.keys.key_set, system_id=product.keys.system_id)
    store = open_store(workspace)
    store.add_product(product)
    batch = store.create_batch(product.id, quantity)
    return StationWorld(workspace, keys, product, store, batch.id)


@pytest.fixture
def world(tmp_path) -> StationWorld:
    w = make_world(tmp_path / "home")
    yield w
    w.store.close()


@pytest.fixture
def station_ctx(world) -> EncodeContext:
    """A ready station context on the world's batch (simulator signatures accepted)."""
    return world.context()


@pytest.fixture
def world_factory():
    """Make further independent worlds (own workspace, keystore and database): ``world_factory(home)``."""
    made = []

    def make(home: Path, quantity: int = 200) -> StationWorld:
        made.append(make_world(home, quantity))
        return made[-1]

    yield make
    for w in made:
        w.store.close()
