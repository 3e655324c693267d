"""Slots 3 and 4 have one name everywhere, and `keys rotate` says what a rotation does to the chips.

Through the console script: the product file, `product show`, `keys list`, the manifest and the export
all say `proprietary-write` / `spare`; older names in product files are read as those.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase", "TAGSMITH_USER": "Eng. Kim"}
SHIPPED = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
KEY_SET, PRODUCT = "aurora-dw600-2026", "aurora-dw600"


def _tagsmith(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **ENV, "COLUMNS": "200"}
    env.pop("TAGSMITH_HOME", None)
    run = subprocess.run([TAGSMITH, "--home", str(home), *args], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, timeout=300)
    if ok:
        assert run.returncode == 0, (args, run.stdout, run.stderr)
    return run


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A workspace the demo made: the shipped product, its key set, one batch encoded on simulated chips."""
    home = tmp_path_factory.mktemp("vocab") / "ws"
    _tagsmith(home, "demo", "--units", "2", "--tear-rate", "0", "--json")
    return home


def _key_set_roles(home: Path) -> dict[int, str]:
    listed = json.loads(_tagsmith(home, "keys", "list", "--json").stdout)
    (info,) = [k for k in listed["key_sets"] if k["key_set"] == KEY_SET]
    return {s["slot"]: s["role"] for s in info["slots"]}


def _product_roles(home: Path, product: str = PRODUCT) -> dict[int, str]:
    shown = json.loads(_tagsmith(home, "product", "show", product, "--json").stdout)
    return {int(slot): s["role"] for slot, s in shown["slots"].items()}


def test_product_key_set_and_manifest_use_one_vocabulary(demo, tmp_path):
    assert _product_roles(demo) == _key_set_roles(demo)
    assert [_product_roles(demo)[s] for s in (3, 4)] == ["proprietary-write", "spare"]
    (batch,) = json.loads(_tagsmith(demo, "batch", "list", "--json").stdout)[:1]
    out = tmp_path / "m.jsonl"
    _tagsmith(demo, "manifest", "export", "--batch", batch["id"], "--out", str(out), "--without-qa",
              "--reason", "slot names")
    header = json.loads(out.read_text().splitlines()[0])
    assert {s: v["role"] for s, v in header["keys"]["slots"].items()} == {
        "0": "app-master", "1": "sdm-meta-read", "2": "sdm-file-read", "3": "proprietary-write", "4": "spare"}


def test_a_product_file_with_the_old_names_reads_as_the_new_ones(demo, tmp_path):
    old = SHIPPED.read_text().replace('id = "aurora-dw600"', 'id = "aurora-legacy"')
    old = re.sub(r'role = "proprietary-write"', 'role = "write"', old)
    old = re.sub(r'role = "spare"', 'role = "change-config"', old)
    assert '"write"' in old and '"change-config"' in old
    path = tmp_path / "legacy.toml"
    path.write_text(old)
    _tagsmith(demo, "product", "add", str(path))
    assert _product_roles(demo, "aurora-legacy") == _key_set_roles(demo)


def test_an_unknown_slot_role_is_refused_naming_the_vocabulary(demo, tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text(SHIPPED.read_text().replace('role = "spare"', 'role = "spares"'))
    run = _tagsmith(demo, "product", "add", str(path), ok=False)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "keys.slots.4.role: unknown slot role 'spares'" in run.stderr and "proprietary-write" in run.stderr


def test_rotate_says_the_product_still_pins_the_old_version_and_how_to_move(tmp_path):
    home = tmp_path / "ws"
    _tagsmith(home, "demo", "--units", "2", "--tear-rate", "0", "--json")
    rotated = _tagsmith(home, "keys", "rotate", "--key-set", KEY_SET, "--slot", "2")
    text = " ".join(rotated.stdout.split())
    assert "is now current" not in text
    assert f"product {PRODUCT} still pins slot 2 at v1" in text and "chips still get v1" in text
    step = '2 = { role = "sdm-file-read", version = 2 }'
    assert f"under [keys.slots] in its product file: {step} then run: tagsmith product add FILE" in text
    data = json.loads(_tagsmith(home, "keys", "rotate", "--key-set", KEY_SET, "--slot", "3", "--json").stdout)
    assert data["version"] == 2 and data["products"] == [
        {"product": PRODUCT, "pinned_version": 1, "chips_get": 1,
         "move_with": '3 = { role = "proprietary-write", version = 2 }'}]

    # the step the message gives, followed literally: new batches' chips get v2
    moved = tmp_path / "dishwasher.toml"
    moved.write_text(SHIPPED.read_text().replace('2 = { role = "sdm-file-read", version = 1 }', step))
    _tagsmith(home, "product", "add", str(moved))
    batch = json.loads(_tagsmith(home, "batch", "create", "--product", PRODUCT, "--quantity", "1", "--json").stdout)
    _tagsmith(home, "station", "run", "--batch", batch["id"], "--sim", "--count", "1", "--sim-tear-rate", "0")
    (unit,) = json.loads(_tagsmith(home, "batch", "units", batch["id"], "--json").stdout)
    assert {int(k): v for k, v in unit["key_versions"].items()}[2] == 2
    again = " ".join(_tagsmith(home, "keys", "rotate", "--key-set", KEY_SET, "--slot", "2").stdout.split())
    assert f"product {PRODUCT} still pins slot 2 at v2" in again and "chips still get v2" in again
