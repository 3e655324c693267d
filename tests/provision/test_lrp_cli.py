"""An LRP product through the console script: product add's confirmation, station run --sim, tag verify,
the manifest and keys export naming the mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tagsmith.batches.manifest import load_schema

from .conftest import DISHWASHER

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": "tagsmith-demo-passphrase", "TAGSMITH_USER": "eng-lrp"}


def _tagsmith(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TAGSMITH, "--home", str(home), *args], capture_output=True, text=True,
                          env={**os.environ, **ENV, "COLUMNS": "200"}, stdin=subprocess.DEVNULL, timeout=300)


def _lrp_file(tmp_path: Path) -> Path:
    text = DISHWASHER.read_text().replace('id = "aurora-dw600"', 'id = "aurora-dw600-lrp"', 1)
    path = tmp_path / "lrp.toml"
    path.write_text('secure_messaging = "lrp"\n' + text)
    return path


def test_product_add_of_an_lrp_product_needs_the_confirmation_and_records_it(tmp_path):
    home, product = tmp_path / "ws", _lrp_file(tmp_path)
    refused = _tagsmith(home, "product", "add", str(product))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "an LRP chip cannot go back to AES" in refused.stderr and "--confirm-irreversible" in refused.stderr
    added = _tagsmith(home, "product", "add", str(product), "--confirm-irreversible")
    assert added.returncode == 0, added.stderr
    assert "LRP" in added.stdout and "eng-lrp" in added.stdout
    shown = json.loads(_tagsmith(home, "product", "show", "aurora-dw600-lrp", "--json").stdout)
    assert shown["secure_messaging"] == "lrp" and shown["irreversible_confirmed"]["by"] == "eng-lrp"
    aes = _tagsmith(home, "product", "add", str(DISHWASHER), "--json")
    assert json.loads(aes.stdout)["secure_messaging"] == "aes"
    assert json.loads(aes.stdout)["irreversible_confirmed"] is None


def test_station_run_sim_encodes_lrp_tags_that_verify_and_export_with_the_mode(tmp_path):
    home = tmp_path / "ws"
    assert _tagsmith(home, "demo", "--units", "2", "--tear-rate", "0", "--json").returncode == 0
    assert _tagsmith(home, "product", "add", str(_lrp_file(tmp_path)), "--confirm-irreversible").returncode == 0
    batch = json.loads(_tagsmith(home, "batch", "create", "--product", "aurora-dw600-lrp", "--quantity", "3",
                                 "--json").stdout)["id"]
    run = _tagsmith(home, "station", "run", "--batch", batch, "--sim", "--sim-tear-rate", "0.3", "--seed", "3",
                    "--json")
    assert run.returncode == 0, run.stderr
    tags = [e for e in map(json.loads, run.stdout.splitlines()) if e["event"] == "tag"]
    done = [t for t in tags if t["result"] in ("encoded", "resumed")]
    assert len(done) == 3
    assert all(t["apdus"] == 20 for t in tags if t["result"] == "encoded")
    verified = _tagsmith(home, "tag", "verify", "--sim", done[0]["uid"], "--allow-simulator-signature", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"]
    tapped = _tagsmith(home, "tag", "verify", "--url", json.loads(verified.stdout)["url"])
    assert tapped.returncode == 7 and "replay" in tapped.stderr  # the same tap again: verified, then a replay
    out = tmp_path / "m.jsonl"
    export = _tagsmith(home, "manifest", "export", "--batch", batch, "--out", str(out), "--without-qa",
                       "--reason", "lrp test")
    assert export.returncode == 0, export.stderr
    header = json.loads(out.read_text().splitlines()[0])
    assert header["product"]["secure_messaging"] == "lrp"
    pem = tmp_path / "line.pem"
    pem.write_text(_tagsmith(home, "keys", "manifest-key").stdout)
    checked = _tagsmith(home, "manifest", "verify", str(out), "--public-key", str(pem))
    assert checked.returncode == 0, checked.stdout + checked.stderr  # the schema takes the mode
    assert "secure_messaging" in load_schema()["$defs"]["header"]["properties"]["product"]["properties"]
