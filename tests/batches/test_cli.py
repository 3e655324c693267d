"""product / batch / manifest commands through the Typer app and the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagsmith import VerificationError
from tagsmith.batches.store import open_store
from tagsmith.cli import app
from tagsmith.workspace import Workspace

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
runner = CliRunner()


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", "a long enough passphrase")
    return tmp_path / "ws"


def run(ws, *args):
    result = runner.invoke(app, ["--home", str(ws), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


def run_json(ws, *args):
    return json.loads(run(ws, *args, "--json").stdout)


def test_product_and_batch_commands(ws):
    added = run_json(ws, "product", "add", str(DISHWASHER))
    assert added["added"] and added["gtin"] == "09506000134376"
    assert run_json(ws, "product", "add", str(DISHWASHER))["added"] is False
    assert [p["id"] for p in run_json(ws, "product", "list")] == ["aurora-dw600"]
    shown = run_json(ws, "product", "show", "aurora-dw600")
    assert shown["serial"]["prefix"] == "DW6" and shown["label_layout"] == "roll-50x25"
    batch = run_json(ws, "batch", "create", "--product", "aurora-dw600", "--quantity", "25", "--lot", "L1",
                     "--line", "line-2")
    assert batch["quantity"] == 25 and batch["progress"]["minted"] == 25 and batch["state"] == "open"
    assert [b["id"] for b in run_json(ws, "batch", "list")] == [batch["id"]]
    assert "done 0/25" in run(ws, "batch", "show", batch["id"]).stdout
    closed = run_json(ws, "batch", "close", batch["id"])
    assert closed["state"] == "closed"
    assert "products" in run(ws, "product", "list").stdout


def test_manifest_export_verify_upload_status(ws, tmp_path):
    run(ws, "keys", "init", "--kdf-n", "1024")
    run(ws, "product", "add", str(DISHWASHER))
    batch = run_json(ws, "batch", "create", "--product", "aurora-dw600", "--quantity", "5")["id"]
    with open_store(Workspace(ws)) as store:
        for i in range(3):
            unit = store.allocate_unit(batch, bytes([4, 9, 9, 9, 9, 9, i]), "st-1")
            store.mark_encoded(unit.id, {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, i, "st-1")
    out = tmp_path / "exports" / "m.jsonl"
    exported = run_json(ws, "manifest", "export", "--batch", batch, "--out", str(out),
                        "--without-qa", "--reason", "batches CLI test: no QA run")  # skips the QA release gate
    assert exported["units"] == 3 and Path(exported["signature"]).exists()
    header = json.loads(out.read_text().splitlines()[0])
    assert header["sdm"]["verifier_params"] == {"picc_param": "p", "mac_param": "c", "mac_input_from": "/"}
    assert header["keys"]["diversification"].startswith("AN10922")
    pem = tmp_path / "manifest.pem"
    pem.write_text(json.loads(out.with_name("m.jsonl.sig").read_text())["public_key"])
    verified = run_json(ws, "manifest", "verify", str(out), "--public-key", str(pem))
    assert verified["ok"] and verified["key_pinned"] and verified["units"] == 3
    shown = run_json(ws, "batch", "show", batch)
    assert shown["manifests"][0]["id"] == exported["manifest_id"] and shown["uploaded"] is False
    copy = tmp_path / "copy.jsonl"
    shutil.copy(out, copy)
    shutil.copy(out.with_name("m.jsonl.sig"), tmp_path / "copy.jsonl.sig")
    merged = run_json(ws, "manifest", "merge", str(out), str(copy), "--out", str(tmp_path / "merged.jsonl"))
    assert merged["units"] == 3 and merged["duplicates_collapsed"] == 3
    data = bytearray(out.read_bytes())
    data[-10] ^= 0x20
    out.write_bytes(bytes(data))
    result = runner.invoke(app, ["--home", str(ws), "manifest", "verify", str(out)])
    assert isinstance(result.exception, VerificationError)


def test_console_script_bad_gtin_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(DISHWASHER.read_text().replace('gtin = "09506000134376"', 'gtin = "09506000134377"'))
    script = Path(sys.executable).with_name("tagsmith")
    env = {**os.environ, "TAGSMITH_HOME": str(tmp_path / "ws"), "COLUMNS": "200"}
    done = subprocess.run([str(script), "product", "add", str(bad)], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["error: bad.toml: gtin: GTIN '09506000134377' has check digit 7, expected 6"]


def test_console_script_tampered_manifest_exits_6(tmp_path):
    script = Path(sys.executable).with_name("tagsmith")
    bogus = tmp_path / "m.jsonl"
    bogus.write_text('{"schema":"tagsmith-manifest"}\n')
    done = subprocess.run([str(script), "manifest", "verify", str(bogus)], capture_output=True, text=True,
                          env={**os.environ, "TAGSMITH_HOME": str(tmp_path / "ws"), "COLUMNS": "200"})
    assert done.returncode == 6 and "no signature file" in done.stderr
    missing = subprocess.run([str(script), "manifest", "verify", str(tmp_path / "nope.jsonl")], capture_output=True,
                             text=True, env={**os.environ, "TAGSMITH_HOME": str(tmp_path / "ws"), "COLUMNS": "200"})
    assert missing.returncode == 8 and "no manifest file" in missing.stderr


def test_batch_show_lists_the_epcis_capture_receipts(ws):
    run(ws, "product", "add", str(DISHWASHER))
    batch = run_json(ws, "batch", "create", "--product", "aurora-dw600", "--quantity", "2")["id"]
    assert run_json(ws, "batch", "show", batch)["epcis_captures"] == []
    with open_store(Workspace(ws)) as store:
        store.record_epcis_capture(batch_id=batch, document_sha256="ab" * 32, url="https://repo.example/capture",
                                   events=5, accepted=4, rejected=1, receipt={"rejected": [{"eventID": "ni:x"}]})
    shown = run_json(ws, "batch", "show", batch)["epcis_captures"]
    assert [(c["events"], c["accepted"], c["rejected"], c["receipt"]) for c in shown] == [
        (5, 4, 1, {"rejected": [{"eventID": "ni:x"}]})]
    text = run(ws, "batch", "show", batch).stdout
    assert "to https://repo.example/capture: 5 events, 4 accepted, 1 rejected" in text
