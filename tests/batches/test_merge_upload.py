"""Merging station manifests (conflicts refused, nothing lost) and uploading with retries."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tagsmith import ConfigError, StateError, VerificationError
from tagsmith.batches.manifest import export_manifest, signature_path
from tagsmith.batches.merge import MergeConflictError, merge_manifests
from tagsmith.batches.upload import UploadError, upload_manifest
from tagsmith.batches.verify import verify_manifest
from tagsmith.keystore import DIVERSIFICATION_SCHEME as DIVERSIFICATION
from tagsmith.keystore.signing import MANIFEST_VERIFIER


def _export(store, batch_id, path, keypair):
    return export_manifest(store, batch_id, path, signer=keypair[0], public_key_pem=keypair[1],
                           diversification=DIVERSIFICATION)


def _resign(path, keypair):
    digest = hashlib.sha256(path.read_bytes()).digest()
    sig = json.loads(signature_path(path).read_text())
    sig.update(sha256=digest.hex(), signature=base64.b64encode(keypair[0](digest)).decode())
    signature_path(path).write_text(json.dumps(sig))


@pytest.fixture
def stations(store, product, keypair, encode_units, tmp_path):
    """Manifest A (units 1-4 from st-a) and B (units 1-7, 5-7 from st-b) of one batch."""
    batch = store.create_batch(product.id, 20)
    encode_units(store, batch.id, 4, station="st-a")
    a = _export(store, batch.id, tmp_path / "a.jsonl", keypair).path
    encode_units(store, batch.id, 3, start=4, station="st-b")
    b = _export(store, batch.id, tmp_path / "b.jsonl", keypair).path
    return batch, a, b


def test_merge_loses_nothing_and_collapses_identical_repeats(store, keypair, stations, tmp_path):
    batch, a, b = stations
    out = tmp_path / "merged.jsonl"
    result = merge_manifests([a, b], out, signer=keypair[0], public_key_pem=keypair[1],
                             store=store, verifier=MANIFEST_VERIFIER)
    assert result.units == 7 and result.duplicates == 4
    report = verify_manifest(out, keypair[1], verifier=MANIFEST_VERIFIER)
    assert report.header["kind"] == "merge" and len(report.header["sources"]) == 2
    stations_seen = {json.loads(line)["station"] for line in out.read_text().splitlines()[1:]}
    assert stations_seen == {"st-a", "st-b"}
    assert store.manifest(result.manifest_id).kind == "merge"


def _edit_record(path, index, **changes):
    lines = path.read_text().splitlines()
    record = json.loads(lines[index])
    record.update(changes)
    lines[index] = json.dumps(record, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")


def test_merge_refuses_a_serial_with_two_uids(keypair, stations, tmp_path):
    _, a, b = stations
    _edit_record(b, 2, uid="04AAAAAAAAAAAA")
    _resign(b, keypair)
    with pytest.raises(MergeConflictError) as err:
        merge_manifests([a, b], tmp_path / "m.jsonl", signer=keypair[0], public_key_pem=keypair[1], verifier=MANIFEST_VERIFIER)
    assert err.value.total == 1 and err.value.conflicts[0].kind == "serial-two-uids"
    assert "a.jsonl vs b.jsonl" in str(err.value.conflicts[0])
    assert not (tmp_path / "m.jsonl").exists()


def test_merge_refuses_a_uid_with_two_serials_and_differing_records(product, keypair, stations, tmp_path):
    _, a, b = stations
    other = product.serial.sequential(19)
    lines = b.read_text().splitlines()
    _edit_record(b, 1, serial=other, url=json.loads(lines[1])["url"].replace(json.loads(lines[1])["serial"], other))
    _edit_record(b, 2, station="st-x")
    _resign(b, keypair)
    with pytest.raises(MergeConflictError) as err:
        merge_manifests([a, b], tmp_path / "m.jsonl", signer=keypair[0], public_key_pem=keypair[1], verifier=MANIFEST_VERIFIER)
    assert {c.kind for c in err.value.conflicts} == {"uid-two-serials", "unit-differs"}


def test_merge_refuses_other_batches_and_unsigned_input(store, product, keypair, stations, encode_units, tmp_path):
    _, a, b = stations
    other = store.create_batch(product.id, 5)
    encode_units(store, other.id, 1, start=100)
    c = _export(store, other.id, tmp_path / "c.jsonl", keypair).path
    with pytest.raises(VerificationError, match="not the same batch"):
        merge_manifests([a, c], tmp_path / "m.jsonl", signer=keypair[0], public_key_pem=keypair[1], verifier=MANIFEST_VERIFIER)
    signature_path(b).unlink()
    with pytest.raises(VerificationError, match="no signature"):
        merge_manifests([a, b], tmp_path / "m.jsonl", signer=keypair[0], public_key_pem=keypair[1], verifier=MANIFEST_VERIFIER)


# ---------------------------------------------------------------- upload against a local platform
class Platform(BaseHTTPRequestHandler):
    """A toy platform: fails the first attempt, then stores manifests by Idempotency-Key."""

    fail_first = 1
    attempts = 0
    received: dict[str, dict] = {}

    def do_POST(self):
        type(self).attempts += 1
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.attempts <= self.fail_first:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        if self.headers["Authorization"] != "Bearer s3cret":
            return self._reply(401, {"error": "bad token"})
        key, sha = self.headers["Idempotency-Key"], hashlib.sha256(body).hexdigest()
        if sha != self.headers["X-Tagsmith-Sha256"]:
            return self._reply(400, {"error": "body does not match its digest"})
        json.loads(base64.b64decode(self.headers["X-Tagsmith-Signature"]))
        known = self.received.get(key)
        if known and known["sha256"] != sha:
            return self._reply(409, {"error": "different content"})
        if known:
            return self._reply(200, known)
        receipt = {"manifest_id": key, "sha256": sha, "receipt_id": f"r-{len(self.received) + 1}",
                   "units": len(body.splitlines()) - 1}
        self.received[key] = receipt
        self._reply(201, receipt)

    def _reply(self, status, data):
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def platform():
    Platform.attempts, Platform.received, Platform.fail_first = 0, {}, 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), Platform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/manifests"
    server.shutdown()


def test_upload_retries_is_idempotent_and_records_the_receipt(store, keypair, stations, platform, monkeypatch):
    batch, a, _ = stations
    monkeypatch.setenv("TAGSMITH_UPLOAD_TOKEN", "s3cret")
    receipt = upload_manifest(a, platform, store=store, backoff=0.01, verifier=MANIFEST_VERIFIER)
    assert Platform.attempts == 2 and receipt["receipt_id"] == "r-1" and receipt["units"] == 4
    manifest_id = json.loads(a.read_text().splitlines()[0])["manifest_id"]
    record = store.manifest(manifest_id)
    assert record.receipt == receipt and record.uploaded_at and record.upload_url == platform
    again = upload_manifest(a, platform, store=store, backoff=0.01, verifier=MANIFEST_VERIFIER)  # re-sending is safe
    assert again == receipt and len(Platform.received) == 1 and Platform.attempts == 3


def test_upload_gives_up_after_the_attempts(stations, platform, monkeypatch):
    _, a, _ = stations
    monkeypatch.setenv("TAGSMITH_UPLOAD_TOKEN", "s3cret")
    Platform.fail_first = 10
    slept = []
    with pytest.raises(UploadError, match="after 3 attempts: HTTP 503"):
        upload_manifest(a, platform, attempts=3, backoff=0.5, sleep=slept.append, verifier=MANIFEST_VERIFIER)
    assert slept == [0.0, 0.0]  # Retry-After: 0 from the server wins over the backoff


def test_upload_backoff_is_exponential_when_the_network_is_down(stations, monkeypatch):
    _, a, _ = stations
    monkeypatch.setenv("TAGSMITH_UPLOAD_TOKEN", "s3cret")
    slept = []
    with pytest.raises(UploadError, match="after 4 attempts"):
        upload_manifest(a, "http://127.0.0.1:9/manifests", attempts=4, backoff=0.5, sleep=slept.append, timeout=2,
                        verifier=MANIFEST_VERIFIER)
    assert slept == [0.5, 1.0, 2.0]


def test_upload_refusals(stations, platform, monkeypatch):
    _, a, _ = stations
    monkeypatch.delenv("TAGSMITH_UPLOAD_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="TAGSMITH_UPLOAD_TOKEN"):
        upload_manifest(a, platform, verifier=MANIFEST_VERIFIER)
    monkeypatch.setenv("TAGSMITH_UPLOAD_TOKEN", "wrong")
    with pytest.raises(ConfigError, match="https"):
        upload_manifest(a, "http://platform.example.com/manifests", verifier=MANIFEST_VERIFIER)
    Platform.fail_first = 0
    with pytest.raises(ConfigError, match="refused the upload token"):
        upload_manifest(a, platform, verifier=MANIFEST_VERIFIER)
    monkeypatch.setenv("TAGSMITH_UPLOAD_TOKEN", "s3cret")
    upload_manifest(a, platform, verifier=MANIFEST_VERIFIER)
    manifest_id = json.loads(a.read_text().splitlines()[0])["manifest_id"]
    Platform.received[manifest_id]["sha256"] = "0" * 64
    with pytest.raises(StateError, match="different content"):
        upload_manifest(a, platform, verifier=MANIFEST_VERIFIER)


def test_upload_refuses_credentials_in_the_url_and_a_receipt_that_is_not_json(stations, monkeypatch):
    _, a, _ = stations
    monkeypatch.setenv("TAGSMITH_UPLOAD_TOKEN", "s3cret")
    with pytest.raises(ConfigError, match="must not carry credentials"):
        upload_manifest(a, "https://user:pw@platform.example.com/manifests", verifier=MANIFEST_VERIFIER)

    class NotJson(BaseHTTPRequestHandler):
        posts = 0

        def do_POST(self):
            type(self).posts += 1
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "9")
            self.end_headers()
            self.wfile.write(b"<html>ok!")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotJson)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(UploadError, match="receipt is not JSON: '<html>ok!'"):
            upload_manifest(a, f"http://127.0.0.1:{server.server_address[1]}/m", backoff=0.01, verifier=MANIFEST_VERIFIER)
        assert NotJson.posts == 1  # accepted once: not sent again
    finally:
        server.shutdown()
