"""Manifests: export -> verify -> tamper -> fail; consistency checks; CSV; a kill -9 mid-export."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tagsmith import ConfigError, VerificationError
from tagsmith.batches.manifest import export_manifest, load_schema, signature_path
from tagsmith.batches.schemacheck import SchemaViolation, compile_schema
from tagsmith.batches.verify import verify_manifest
from tagsmith.keystore import DIVERSIFICATION_SCHEME as DIVERSIFICATION
from tagsmith.keystore.signing import MANIFEST_VERIFIER, ed25519_signer, generate_ed25519

SDM = {"picc": {"param": "p", "offset": 58, "length": 32}, "cmac": {"param": "c", "offset": 93, "length": 16},
       "mac_input_from": None}


@pytest.fixture
def batch(store, product, encode_units):
    batch = store.create_batch(product.id, 20, lot="L2026W47", line="line-1")
    encode_units(store, batch.id, 9)
    store.void_unit(store.allocate_unit(batch.id, bytes.fromhex("04FFFFFFFFFFFF"), "st-1").id, "torn")
    return batch


def _export(store, batch, path, keypair, fmt="jsonl"):
    signer, public, _ = keypair
    return export_manifest(store, batch.id, path, signer=signer, public_key_pem=public, fmt=fmt, sdm_layout=SDM,
                           diversification=DIVERSIFICATION)


def _resign(path: Path, keypair) -> None:
    """Sign the file as it is now (to test the checks behind the signature)."""
    signer, public, _ = keypair
    digest = hashlib.sha256(path.read_bytes()).digest()
    sig = json.loads(signature_path(path).read_text())
    sig.update(sha256=digest.hex(), public_key=public, signature=base64.b64encode(signer(digest)).decode())
    signature_path(path).write_text(json.dumps(sig))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_round_trip_then_one_changed_byte_fails(store, batch, keypair, tmp_path, fmt):
    path = tmp_path / f"m.{fmt}"
    result = _export(store, batch, path, keypair, fmt)
    assert result.units == 9 and signature_path(path).exists()
    report = verify_manifest(path, keypair[1], verifier=MANIFEST_VERIFIER)
    assert report.units == 9 and report.key_pinned and report.manifest_id == result.manifest_id
    header = report.header
    assert header["counts"] == {"units": 9, "verified": 5, "qa_pass": 3, "qa_fail": 2, "voided": 1}
    assert header["product"]["gtin"] == "09506000134376" and header["batch"]["lot"] == "L2026W47"
    assert header["sdm"] == SDM and header["keys"]["slots"]["0"] == {"role": "app-master", "version": 1}
    recorded = store.manifests(batch.id)
    assert [(m.id, m.sha256, m.units) for m in recorded] == [(result.manifest_id, result.sha256, 9)]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == result.sha256
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="changed after it was signed"):
        verify_manifest(path, keypair[1], verifier=MANIFEST_VERIFIER)


def test_records_hold_no_key_and_the_unit_fields(store, batch, keypair, tmp_path):
    path = tmp_path / "m.jsonl"
    _export(store, batch, path, keypair)
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    assert set(record) == {"serial", "uid", "url", "key_versions", "encoded_at", "station", "encode_counter",
                           "verified_counter", "qa"}
    assert record["url"] == f"https://id.example.com/01/09506000134376/21/{record['serial']}"
    assert record["uid"] == "04000000000000" and record["key_versions"] == {str(s): 1 for s in range(5)}
    assert "key\"" not in path.read_text().replace('"key_versions"', "").replace('"key_set"', "")


def test_pinned_key_detects_a_resigned_manifest(store, batch, keypair, tmp_path):
    path = tmp_path / "m.jsonl"
    _export(store, batch, path, keypair)
    other_private, _ = generate_ed25519()
    other = ed25519_signer(other_private)
    _resign(path, (*other, other_private))
    verify_manifest(path, verifier=MANIFEST_VERIFIER)  # consistent with the key inside the .sig file ...
    with pytest.raises(VerificationError, match="different key"):
        verify_manifest(path, keypair[1], verifier=MANIFEST_VERIFIER)  # ... but not the line's key


@pytest.mark.parametrize("change, reason", [
    (lambda lines: lines + [lines[1]], "duplicate serial"),
    (lambda lines: lines[:2] + [lines[2].replace(json.loads(lines[2])["uid"], json.loads(lines[1])["uid"])] + lines[3:],
     "duplicate UID"),
    (lambda lines: lines[:-1], "header counts 9 units, the records hold 8"),
    (lambda lines: [lines[0].replace('"qa_pass":3', '"qa_pass":4')] + lines[1:], "qa_pass"),
    (lambda lines: lines[:1] + [lines[1].replace("/21/", "/21/X")] + lines[2:], "does not match serial"),
    (lambda lines: lines[:1] + [lines[1].replace('"station"', '"secret_key":"00","station"')] + lines[2:],
     "unexpected field 'secret_key'"),
    (lambda lines: lines[:1] + [lines[1][:-5]] + lines[2:], "not valid JSON"),
    (lambda lines: [lines[0].replace('"schema_version":1', '"schema_version":2')] + lines[1:], "schema_version"),
])
def test_consistency_checks_behind_a_valid_signature(store, batch, keypair, tmp_path, change, reason):
    path = tmp_path / "m.jsonl"
    _export(store, batch, path, keypair)
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")
    _resign(path, keypair)
    with pytest.raises(VerificationError, match=reason):
        verify_manifest(path, keypair[1], verifier=MANIFEST_VERIFIER)


def test_serial_with_a_typo_fails_its_check_characters(store, batch, keypair, tmp_path):
    path = tmp_path / "m.jsonl"
    _export(store, batch, path, keypair)
    lines = path.read_text().splitlines()
    serial = json.loads(lines[1])["serial"]
    pos = next(i for i in range(3, len(serial) - 1) if serial[i] != serial[i + 1])
    typo = serial[:pos] + serial[pos + 1] + serial[pos] + serial[pos + 2:]
    lines[1] = lines[1].replace(serial, typo)
    path.write_text("\n".join(lines) + "\n")
    _resign(path, keypair)
    with pytest.raises(VerificationError, match="check characters"):
        verify_manifest(path, keypair[1], verifier=MANIFEST_VERIFIER)


def test_missing_signature_and_bad_format(store, batch, keypair, tmp_path):
    path = tmp_path / "m.jsonl"
    _export(store, batch, path, keypair)
    signature_path(path).unlink()
    with pytest.raises(VerificationError, match="no signature file"):
        verify_manifest(path, verifier=MANIFEST_VERIFIER)
    with pytest.raises(ConfigError, match="format"):
        _export(store, batch, tmp_path / "x.xml", keypair, fmt="xml")


def test_empty_batch_exports_an_empty_manifest(store, product, keypair, tmp_path):
    batch = store.create_batch(product.id, 3)
    result = _export(store, batch, tmp_path / "e.jsonl", keypair)
    report = verify_manifest(result.path, verifier=MANIFEST_VERIFIER)
    assert result.units == 0 and report.header["time_range"]["first_encoded_at"] is None


def test_shipped_schema_is_understood_by_the_checker():
    schema = load_schema()
    check = compile_schema(schema["$defs"]["unit"], schema)
    good = {"serial": "DW60000001XX", "uid": "04000000000000", "url": "https://x/01/1/21/DW60000001XX",
            "key_versions": {"0": 1}, "encoded_at": "2026-11-23T02:28:00.225Z", "station": "s",
            "encode_counter": 1, "verified_counter": None, "qa": None}
    check(good, "unit")
    for bad in ({**good, "uid": "04"}, {**good, "key_versions": {"5": 1}}, {**good, "qa": "maybe"},
                {**good, "encode_counter": True}, {k: v for k, v in good.items() if k != "url"}):
        with pytest.raises(SchemaViolation):
            check(bad, "unit")


CHILD = """
import pathlib, sys, time
from tagsmith.batches import manifest
from tagsmith.batches.store import open_store
from tagsmith.keystore.signing import ed25519_signer
from tagsmith.workspace import Workspace
home, url, batch, out, mode, marker, private = sys.argv[1:]
signer, public = ed25519_signer(pathlib.Path(private).read_text())
if mode == "write":
    original = manifest._jsonl
    def slow(record):
        time.sleep(0.2)
        return original(record)
    manifest._jsonl, manifest._CHUNK = slow, 2
else:
    real = signer
    def signer(digest):
        pathlib.Path(marker).touch()
        time.sleep(60)
        return real(digest)
with open_store(Workspace(pathlib.Path(home)), url=url or None) as store:
    manifest.export_manifest(store, batch, out, signer=signer, public_key_pem=public, diversification='test')
"""


@pytest.mark.parametrize("mode", ["write", "sign"])
def test_kill_9_during_export_records_nothing(store, store_home, batch, keypair, tmp_path, mode):
    out, marker, private = tmp_path / "out" / "m.jsonl", tmp_path / "signing", tmp_path / "key.pem"
    private.write_text(keypair[2])
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store_home.workspace.home), store_home.url or "", batch.id,
                              str(out), mode, str(marker), str(private)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temps = list(out.parent.glob(".m.jsonl.*.tmp")) if out.parent.exists() else []
        if (mode == "write" and temps) or (mode == "sign" and marker.exists()):
            time.sleep(0.5 if mode == "write" else 0)  # a few records into the temporary file
            break
        assert child.poll() is None, "the export finished before it could be killed"
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    assert store.manifests(batch.id) == []
    assert not out.exists() and not signature_path(out).exists()
    again = _export(store, batch, out, keypair)  # the next export just works
    assert verify_manifest(out, keypair[1], verifier=MANIFEST_VERIFIER).units == again.units == 9
    assert [m.id for m in store.manifests(batch.id)] == [again.manifest_id]


def test_records_in_another_json_layout_take_the_full_schema_path(store, batch, keypair, tmp_path):
    """The fast canonical-line check and the schema path accept the same records."""
    path = tmp_path / "m.jsonl"
    _export(store, batch, path, keypair)
    lines = path.read_text().splitlines()
    relaid = [lines[0]] + [json.dumps(json.loads(line), indent=None) for line in lines[1:]]  # ", " and ": "
    assert relaid[1] != lines[1]
    path.write_text("\n".join(relaid) + "\n")
    _resign(path, keypair)
    assert verify_manifest(path, keypair[1], verifier=MANIFEST_VERIFIER).units == 9
    relaid[2] = relaid[2].replace('"qa": null', '"qa": "meh"').replace('"qa": "pass"', '"qa": "meh"') \
        .replace('"qa": "fail"', '"qa": "meh"')
    path.write_text("\n".join(relaid) + "\n")
    _resign(path, keypair)
    with pytest.raises(VerificationError, match="record 2: unit.qa"):
        verify_manifest(path, keypair[1], verifier=MANIFEST_VERIFIER)
