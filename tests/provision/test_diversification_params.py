"""One source of truth for the AN10922 system id: the product file, the key set and the manifest agree."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

import pytest

from tagsmith.keystore import open_keystore
from tagsmith.workspace import Workspace

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
PASSPHRASE = "a long enough passphrase"
ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE}
PRODUCT_SYSTEM_ID = "4155524F5241"  # dishwasher.toml [keys] system_id


@pytest.fixture
def cli(tagsmith_cli):
    """The console script with this module's keystore passphrase."""
    return functools.partial(tagsmith_cli, env=ENV)


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stderr
    return done


def test_following_the_station_hint_makes_a_key_set_the_manifest_describes(tmp_path, cli):
    home = tmp_path / "ws"
    _ok(cli(home, "keys", "init", "--kdf-n", "1024"))
    _ok(cli(home, "product", "add", str(DISHWASHER)))
    batch = json.loads(_ok(cli(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "3",
                               "--json")).stdout)["id"]
    missing = cli(home, "station", "run", "--batch", batch, "--sim", "--count", "2")
    hint = "tagsmith keys create --product aurora-dw600-2026"
    assert missing.returncode != 0 and hint in missing.stderr
    created = json.loads(_ok(cli(home, *hint.split()[1:], "--json")).stdout)
    assert created["system_id"] == PRODUCT_SYSTEM_ID
    _ok(cli(home, "station", "run", "--batch", batch, "--sim", "--count", "2"))
    out = tmp_path / "m.jsonl"
    _ok(cli(home, "manifest", "export", "--batch", batch, "--out", str(out), "--without-qa", "--reason", "t"))
    keys = json.loads(out.read_text().splitlines()[0])["keys"]
    assert keys["system_id"] == PRODUCT_SYSTEM_ID and keys["key_set"] == "aurora-dw600-2026"
    assert keys["diversification"] == created["diversification"]
    units = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert len(units) == 2 and all(u["key_versions"] == {str(s): 1 for s in range(5)} for u in units)


def test_keys_create_refuses_a_system_id_that_contradicts_the_product(tmp_path, cli):
    home = tmp_path / "ws"
    _ok(cli(home, "keys", "init", "--kdf-n", "1024"))
    _ok(cli(home, "product", "add", str(DISHWASHER)))
    refused = cli(home, "keys", "create", "--product", "aurora-dw600-2026", "--system-id", "00")
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and PRODUCT_SYSTEM_ID in refused.stderr


def test_a_key_set_with_another_system_id_is_refused_by_product_add_batch_create_and_station_run(tmp_path, cli):
    home = tmp_path / "ws"
    _ok(cli(home, "keys", "init", "--kdf-n", "1024"))
    _ok(cli(home, "product", "add", str(DISHWASHER)))  # no key set yet: nothing to compare
    batch = json.loads(_ok(cli(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "3",
                               "--json")).stdout)["id"]
    with open_keystore(Workspace.resolve(home), PASSPHRASE) as keystore:  # as the old default made it
        keystore.create_key_set("aurora-dw600-2026", b"aurora-dw600-2026")
    theirs = b"aurora-dw600-2026".hex().upper()
    changed = tmp_path / "dishwasher.toml"  # a new version of the product file, so product add has work to do
    changed.write_text(DISHWASHER.read_text().replace('name = "Aurora DW-600 Dishwasher"', 'name = "Aurora DW-600"'))
    for args in (("product", "add", str(changed)),
                 ("batch", "create", "--product", "aurora-dw600", "--quantity", "3"),
                 ("station", "run", "--batch", batch, "--sim", "--count", "1")):
        done = cli(home, *args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and PRODUCT_SYSTEM_ID in lines[0] and theirs in lines[0], (args, lines)
        assert "aurora-dw600-2026" in lines[0] and "system_id" in lines[0]


def test_the_manifest_names_the_system_id_the_chips_were_keyed_with(tmp_path, cli):
    """A batch keyed before the check existed, with a key set of another system id: the manifest says what the chips hold."""
    from tagsmith.batches.store import open_store

    home = tmp_path / "ws"
    _ok(cli(home, "keys", "init", "--kdf-n", "1024"))
    _ok(cli(home, "product", "add", str(DISHWASHER)))
    batch = json.loads(_ok(cli(home, "batch", "create", "--product", "aurora-dw600", "--quantity", "3",
                               "--json")).stdout)["id"]
    with open_keystore(Workspace.resolve(home), PASSPHRASE) as keystore:
        keystore.create_key_set("aurora-dw600-2026", b"LEGACY")
    with open_store(Workspace(home)) as store:  # encoded by an older station, which did not compare
        unit = store.allocate_unit(batch, bytes.fromhex("04010203040506"), "st-1")
        store.mark_encoded(unit.id, {s: 1 for s in range(5)}, 0, "st-1")
    out = tmp_path / "m.jsonl"
    _ok(cli(home, "manifest", "export", "--batch", batch, "--out", str(out), "--without-qa", "--reason", "t"))
    assert json.loads(out.read_text().splitlines()[0])["keys"]["system_id"] == b"LEGACY".hex().upper()
