"""`tagsmith tag info` on a simulated chip served over nfcpy's udp driver (no pcscd needed).

The verdict says first what the chip is (from its own answers), then what the batch database
says about its UID: a chip still on factory keys is never called "personalised" because the
database knows it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tagsmith.batches.product import load_product
from tagsmith.batches.store import open_store
from tagsmith.encoders.nfcpy import Type4Emulator, free_udp_path
from tagsmith.encoders.simulator.chip import SimulatedNtag424
from tagsmith.workspace import Workspace

PRODUCT = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
TAGSMITH = shutil.which("tagsmith") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tagsmith")
UID = bytes.fromhex("04C0FFEE424243")


def _tag_info(home: Path, chip: SimulatedNtag424) -> dict:
    path = free_udp_path()
    with Type4Emulator(chip, path):
        result = subprocess.run([TAGSMITH, "tag", "info", "--reader", path, "--allow-simulator-signature", "--json"],
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "TAGSMITH_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_factory_fresh_chip_interrupted_before_its_first_key_change_is_not_called_personalised(home):
    home.mkdir(parents=True)
    with open_store(Workspace.resolve(home)) as store:
        product = load_product(PRODUCT)
        store.add_product(product)
        batch = store.create_batch(product.id, 5, batch_id="B1")
        unit = store.allocate_unit(batch.id, UID, "st1", start_encoding=True)  # the station was stopped here
    assert unit.state == "encoding"

    info = _tag_info(home, SimulatedNtag424(uid=UID))
    assert info["verdict"] == "factory-fresh", info
    assert "factory keys" in info["reason"] and unit.serial in info["reason"]
    assert "interrupted before its first key change" in info["reason"]
    assert info["unit"]["state"] == "encoding"


def test_unknown_factory_fresh_chip_is_still_plainly_factory_fresh(home):
    home.mkdir(parents=True)
    with open_store(Workspace.resolve(home)) as store:
        store.add_product(load_product(PRODUCT))
    info = _tag_info(home, SimulatedNtag424(uid=UID))
    assert info["verdict"] == "factory-fresh" and info["unit"] is None
