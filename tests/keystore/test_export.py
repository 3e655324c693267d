"""Resolver export: only the resolver's keys, wrapped for its key (RSA-OAEP or X25519), signed."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from Crypto.PublicKey import ECC, RSA

from tagsmith import ConfigError, KeystoreError, VerificationError
from tagsmith.keystore import KeyRef, export
from tagsmith.keystore.audit import read_audit
from tagsmith.keystore.export import WRAP_RSA, WRAP_X25519, export_for_resolver, unwrap_export
from tagsmith.keystore.file import canonical
from tagsmith.keystore.model import KeyPolicy

UID = bytes.fromhex("04C0FFEE000001")


@pytest.fixture
def store(file_store):
    file_store.create_key_set("prod", b"SYS")
    file_store.rotate("prod", 1)
    file_store.rotate("prod", 2)
    return file_store


@pytest.fixture(params=["rsa", "x25519"])
def pair(request, rsa_pair, make_x25519):
    """(private PEM, public PEM, wrapping scheme) for each recipient key type."""
    return (*rsa_pair, WRAP_RSA) if request.param == "rsa" else (*make_x25519(), WRAP_X25519)


def test_export_unwraps_with_the_matching_private_key(store, pair, tmp_path, workspace):
    out = tmp_path / "resolver.json"
    export_for_resolver(store, "prod", pair[1], out)
    doc = json.loads(out.read_text())
    assert doc["wrapping"]["scheme"] == pair[2]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    keys = unwrap_export(out, pair[0], signer_public_pem=store.manifest_public_key_pem())
    assert keys.key_set == "prod" and keys.system_id == b"SYS" and keys.payload_sha256 == doc["payload_sha256"]
    assert sorted(keys.meta_read_keys) == [1, 2] and sorted(keys.file_read_masters) == [1, 2]
    assert keys.meta_read_key() == store.meta_read_key("prod")
    assert keys.meta_read_key(1) == store.meta_read_key("prod", 1)
    for version in (1, 2):
        assert keys.file_read_key(UID, version) == store.chip_key(KeyRef("prod", 2, version, UID))
    assert read_audit(workspace.audit_log)[-1]["op"] == "export"


def test_export_never_carries_other_slots(file_store, rsa_pair, monkeypatch):
    file_store.create_key_set("prod")
    others = {slot: bytes([0x40 + slot]) * 16 for slot in (0, 3, 4)}
    for slot, master in others.items():
        file_store.import_master("prod", slot, master)
    seen = []
    real = export._parse_payload
    monkeypatch.setattr(export, "_parse_payload", lambda payload, sha: seen.append(payload) or real(payload, sha))
    unwrap_export(export_for_resolver(file_store, "prod", rsa_pair[1]), rsa_pair[0])
    payload = json.loads(seen[0])
    assert {k["slot"] for k in payload["keys"]} == {1, 2}
    assert {k["role"] for k in payload["keys"]} == {"sdm-meta-read", "sdm-file-read"}
    for master in others.values():
        assert master.hex() not in seen[0].decode().lower()
    default = KeyPolicy.default()
    shared_spare = KeyPolicy((*default.slots[:4], replace(default.slots[4], diversified=False)))
    file_store.create_key_set("shared", policy=shared_spare)
    with pytest.raises(KeystoreError, match="never leave"):  # a shared master outside the resolver's slots
        file_store.chip_key(KeyRef("shared", 4, 1))


def test_export_fails_with_any_other_private_key(store, rsa_pair, other_rsa_pair, make_x25519):
    x_priv, x_pub = make_x25519()
    for recipient_pub, wrong_priv in [(rsa_pair[1], other_rsa_pair[0]), (x_pub, make_x25519()[0]),
                                      (rsa_pair[1], x_priv), (x_pub, rsa_pair[0])]:
        blob = export_for_resolver(store, "prod", recipient_pub)
        with pytest.raises(KeystoreError):
            unwrap_export(blob, wrong_priv)


def test_forged_recipient_fingerprint_still_fails_cryptographically(store, rsa_pair, other_rsa_pair):
    doc = json.loads(export_for_resolver(store, "prod", rsa_pair[1]))
    other_pub = RSA.import_key(other_rsa_pair[0]).publickey()
    import hashlib
    doc["wrapping"]["recipient_fingerprint"] = hashlib.sha256(other_pub.export_key(format="DER")).hexdigest()[:16]
    with pytest.raises(KeystoreError, match="wrong private key"):
        unwrap_export(json.dumps(doc).encode(), other_rsa_pair[0])


def test_tampered_export_is_refused(store, make_x25519):
    priv, pub = make_x25519()
    doc = json.loads(export_for_resolver(store, "prod", pub))
    body = bytearray(base64.b64decode(doc["ciphertext"]))
    body[3] ^= 1
    doc["ciphertext"] = base64.b64encode(bytes(body)).decode()
    with pytest.raises(KeystoreError, match="modified"):
        unwrap_export(json.dumps(doc).encode(), priv)
    with pytest.raises(VerificationError):
        unwrap_export(json.dumps(doc).encode(), priv, signer_public_pem=store.manifest_public_key_pem())


def test_signature_checks_the_line_key(store, rsa_pair):
    blob = export_for_resolver(store, "prod", rsa_pair[1])
    stranger = ECC.generate(curve="Ed25519").public_key().export_key(format="PEM")
    with pytest.raises(VerificationError):
        unwrap_export(blob, rsa_pair[0], signer_public_pem=stranger)
    doc = json.loads(blob)
    assert doc["signature"] and canonical({k: v for k, v in doc.items() if k != "signature"})


def test_recipient_key_rules(store, rsa_pair):
    with pytest.raises(ConfigError, match="3072"):
        export_for_resolver(store, "prod", RSA.generate(2048).publickey().export_key().decode())
    with pytest.raises(ConfigError, match="PUBLIC"):
        export_for_resolver(store, "prod", rsa_pair[0])
    with pytest.raises(ConfigError, match="RSA or X25519"):
        export_for_resolver(store, "prod", ECC.generate(curve="P-256").public_key().export_key(format="PEM"))
    with pytest.raises(ConfigError):
        export_for_resolver(store, "prod", "not a key")


def test_one_pem_loader_names_the_curve_and_raises_the_callers_error():
    from tagsmith.keystore.signing import load_ec_key

    ed = ECC.generate(curve="Ed25519").public_key().export_key(format="PEM")
    x = ECC.generate(curve="Curve25519").public_key().export_key(format="PEM")
    assert load_ec_key(ed, "Ed25519").curve == "Ed25519" and load_ec_key(x, "Curve25519").curve == "Curve25519"
    with pytest.raises(ConfigError, match="expected an Ed25519 key, got a Curve25519 key"):
        load_ec_key(x, "Ed25519")
    with pytest.raises(VerificationError, match="not a PEM Ed25519 key"):
        load_ec_key("-----BEGIN NONSENSE-----", "Ed25519", error=VerificationError)
    with pytest.raises(ConfigError, match="RSA or X25519 PEM key .*expected a Curve25519 key, got an? Ed25519 key"):
        export.load_recipient(ed)
