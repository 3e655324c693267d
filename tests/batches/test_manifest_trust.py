"""Whose manifests are trusted, and what a verifier can see of a manifest on disk, through the entry point."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagsmith.batches.manifest import signature_path
from tagsmith.batches.store import open_store
from tagsmith.cli import app
from tagsmith.keystore.signing import ed25519_signer, generate_ed25519
from tagsmith.workspace import Workspace

DISHWASHER = Path(__file__).resolve().parents[2] / "batches" / "products" / "dishwasher.toml"
SCRIPT = Path(sys.executable).with_name("tagsmith")
runner = CliRunner()


def run_json(ws, *args):
    result = runner.invoke(app, ["--home", str(ws), *args, "--json"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def tagsmith(ws, *args):
    env = {**os.environ, "TAGSMITH_HOME": str(ws), "COLUMNS": "200"}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env)


@pytest.fixture
def exported(tmp_path, monkeypatch):
    """(workspace, batch id, a manifest of 3 units signed with the workspace's manifest key)."""
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", "a long enough passphrase")
    ws = tmp_path / "ws"
    run_json(ws, "keys", "init", "--kdf-n", "1024")
    run_json(ws, "product", "add", str(DISHWASHER))
    batch = run_json(ws, "batch", "create", "--product", "aurora-dw600", "--quantity", "5")["id"]
    with open_store(Workspace(ws)) as store:
        for i in range(3):
            unit = store.allocate_unit(batch, bytes([4, 9, 9, 9, 9, 9, i]), "st-1")
            store.mark_encoded(unit.id, {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, i, "st-1")
    out = tmp_path / "line" / "m.jsonl"
    run_json(ws, "manifest", "export", "--batch", batch, "--out", str(out), "--without-qa", "--reason", "test")
    return ws, batch, out


def _sign_as(path: Path, private_pem: str) -> None:
    """Re-sign ``path`` with another Ed25519 key, as a station with its own key (or a forger) would."""
    signer, public = ed25519_signer(private_pem)
    digest = hashlib.sha256(path.read_bytes()).digest()
    sig = json.loads(signature_path(path).read_text())
    sig.update(sha256=digest.hex(), public_key=public, signature=base64.b64encode(signer(digest)).decode())
    signature_path(path).write_text(json.dumps(sig))


def test_merge_refuses_an_input_signed_by_a_stranger_and_accepts_it_when_its_key_is_listed(exported, tmp_path):
    ws, _, line = exported
    station = tmp_path / "station" / "s.jsonl"
    station.parent.mkdir()
    station.write_bytes(line.read_bytes())
    signature_path(station).write_bytes(signature_path(line).read_bytes())
    private, public = generate_ed25519()
    _sign_as(station, private)
    assert tagsmith(ws, "manifest", "verify", str(station)).returncode == 0  # a valid signature, by someone
    merged = tmp_path / "merged.jsonl"

    refused = tagsmith(ws, "manifest", "merge", str(line), str(station), "--out", str(merged))
    assert refused.returncode == 6, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: s.jsonl is signed by a key that is neither the line's manifest key nor one given with "
        "--public-key: not merged"]
    assert not merged.exists() and not signature_path(merged).exists()

    pem = tmp_path / "station.pem"
    pem.write_text(public)
    accepted = tagsmith(ws, "manifest", "merge", str(line), str(station), "--out", str(merged),
                        "--public-key", str(pem), "--json")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["units"] == 3
    line_pem = tmp_path / "line.pem"
    line_pem.write_text(json.loads(signature_path(line).read_text())["public_key"])
    assert tagsmith(ws, "manifest", "verify", str(merged), "--public-key", str(line_pem)).returncode == 0


def _rewrite_line(path: Path, index: int, edit) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[index] = edit(lines[index])
    path.write_bytes(b"\n".join(lines))


def test_verify_refuses_a_control_character_in_a_station_name(exported):
    ws, _, line = exported
    _rewrite_line(line, 1, lambda record: record.replace(b'"station":"st-1"', b'"station":"st-\\u00001"'))
    _sign_as(line, generate_ed25519()[0])
    done = tagsmith(ws, "manifest", "verify", str(line))
    assert done.returncode == 6, done.stderr
    assert "station" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("index", [0, 1], ids=["header", "record"])
def test_verify_calls_a_manifest_that_is_not_utf8_a_verification_failure(exported, index):
    ws, _, line = exported
    _rewrite_line(line, index, lambda text: text.replace(b'"st-1"', b'"st-\xff"').replace(b'"line"', b'"l\xffne"'))
    _sign_as(line, generate_ed25519()[0])
    done = tagsmith(ws, "manifest", "verify", str(line))
    assert done.returncode == 6, done.stderr
    assert done.stderr.strip().splitlines() == ["error: m.jsonl: not UTF-8 text"]


def test_a_re_export_to_the_same_path_supersedes_the_old_record(exported):
    ws, batch, line = exported
    again = run_json(ws, "manifest", "export", "--batch", batch, "--out", str(line), "--force", "--without-qa",
                     "--reason", "t")
    on_disk = json.loads(line.read_text().splitlines()[0])["manifest_id"]
    assert on_disk == again["manifest_id"]
    records = run_json(ws, "batch", "show", batch)["manifests"]
    live = [m for m in records if m["superseded_by"] is None]
    assert [m["id"] for m in live] == [on_disk] and len(records) == 2
    (old,) = [m for m in records if m["superseded_by"] is not None]
    assert old["superseded_by"] == on_disk and old["path"] == live[0]["path"]
    shown = tagsmith(ws, "batch", "show", batch).stdout
    assert f"file replaced by {on_disk}" in shown


def test_replacing_a_manifest_leaves_a_verifiable_pair_at_every_instant(exported, monkeypatch):
    """Between the renames of a re-export, `manifest verify` (the entry point) passes at each instant."""
    from tagsmith.batches import manifest as manifest_module

    ws, batch, line = exported
    pem = line.with_name("line.pem")
    pem.write_text(json.loads(signature_path(line).read_text())["public_key"])
    real_replace, seen = os.replace, []

    def replace_then_verify(src, dst):
        real_replace(src, dst)
        if Path(dst) in (line, signature_path(line)):
            done = tagsmith(ws, "manifest", "verify", str(line), "--public-key", str(pem), "--json")
            seen.append((Path(dst).name, done.returncode, json.loads(done.stdout)["manifest_id"]
                         if done.returncode == 0 else done.stderr.strip()))

    monkeypatch.setattr(manifest_module.os, "replace", replace_then_verify)
    old = json.loads(line.read_text().splitlines()[0])["manifest_id"]
    new = run_json(ws, "manifest", "export", "--batch", batch, "--out", str(line), "--force", "--without-qa",
                   "--reason", "t")["manifest_id"]
    assert [(name, rc) for name, rc, _ in seen] == [("m.jsonl.sig", 0), ("m.jsonl", 0), ("m.jsonl.sig", 0)], seen
    assert [who for _, _, who in seen] == [old, new, new]
    assert "previous" not in json.loads(signature_path(line).read_text())
    assert sorted(p.name for p in line.parent.iterdir()) == ["line.pem", "m.jsonl", "m.jsonl.sig"]


def test_a_sig_entry_for_another_file_does_not_verify_it(exported):
    ws, _, line = exported
    document = json.loads(signature_path(line).read_text())
    document["previous"] = dict(document)
    document["sha256"] = "0" * 64  # the new manifest's entry; the old file is still on disk: previous matches it
    signature_path(line).write_text(json.dumps(document))
    assert tagsmith(ws, "manifest", "verify", str(line)).returncode == 0
    line.write_bytes(line.read_bytes() + b"\n")  # neither entry names this file
    done = tagsmith(ws, "manifest", "verify", str(line))
    assert done.returncode == 6 and "changed after it was signed" in done.stderr
