"""PKCS#11 backend against a private SoftHSM2 token: same keys as the file backend, masters kept inside."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC
from pkcs11 import Attribute
from pkcs11.exceptions import AttributeSensitive

from tagsmith import KeystoreError
from tagsmith.keystore import KeyRef, open_keystore
from tagsmith.keystore.diversify import diversify_aes128
from tagsmith.keystore.export import export_for_resolver, unwrap_export
from tagsmith.keystore.model import KeyPolicy
from tagsmith.keystore.signing import verify_manifest
from tagsmith.workspace import Workspace

pytestmark = pytest.mark.softhsm

UID = bytes.fromhex("04A1B2C3D4E5F6")
MASTERS = [bytes.fromhex(h) for h in ("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF", "B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF",
                                      "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
                                      "E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEF")]


def _with_masters(store, key_set="same"):
    store.create_key_set(key_set, b"LINE-7")
    for slot, master in enumerate(MASTERS):
        store.import_master(key_set, slot, master)
    return store


@pytest.mark.parametrize("vector_id", ["an10922-aes128-example", "an10922-aes128-short-input-uid-only"])
def test_an10922_vectors_identical_through_both_backends(vector_id, ntag_vectors, file_store, pkcs11_store):
    vector = ntag_vectors[vector_id]
    master, m = bytes.fromhex(vector["inputs"]["master_key"]), bytes.fromhex(vector["inputs"]["m"])
    expected = bytes.fromhex(vector["expected"]["diversified_key"])
    results = []
    for store in (file_store, pkcs11_store):
        store.create_key_set("vec")
        ref = store.import_master("vec", 0, master)
        results.append(store._diversify(("vec", 0, ref.version), m))
    assert results == [expected, expected]
    assert expected == diversify_aes128(master, m)
    if "wrong_naive_cmac_01_m" in vector["expected"]:  # the padded case a plain token CMAC would get wrong
        naive = CMAC.new(master, b"\x01" + m, ciphermod=AES).digest()
        assert naive.hex().upper() == vector["expected"]["wrong_naive_cmac_01_m"] != expected.hex().upper()


def test_token_subkeys_match_the_published_example(ntag_vectors, pkcs11_store):
    from tagsmith.keystore.diversify import cmac_subkeys

    vector = ntag_vectors["an10922-aes128-example"]
    pkcs11_store.create_key_set("vec")
    ref = pkcs11_store.import_master("vec", 0, bytes.fromhex(vector["inputs"]["master_key"]))
    loc = ("vec", 0, ref.version)
    assert pkcs11_store._encrypt_ecb(loc, bytes(16)).hex().upper() == vector["expected"]["cmac_L"]
    k1, k2 = cmac_subkeys(lambda b: pkcs11_store._encrypt_ecb(loc, b))
    assert (k1.hex().upper(), k2.hex().upper()) == (vector["expected"]["k1"], vector["expected"]["k2"])


def test_chip_keys_and_fingerprints_identical_across_backends(file_store, pkcs11_store):
    a = _with_masters(file_store).chip_keys("same", UID)
    b = _with_masters(pkcs11_store).chip_keys("same", UID)
    assert a.keys == b.keys and a.versions == b.versions == (2,) * 5
    assert a.meta_read_key == MASTERS[1]  # the shared slot is the master itself
    fa = [v.fingerprint for s in range(5) for v in file_store.info("same").versions[s]]
    fb = [v.fingerprint for s in range(5) for v in pkcs11_store.info("same").versions[s]]
    assert fa[1::2] == fb[1::2]  # imported versions: same keys, same fingerprints


def test_masters_stay_in_the_token(pkcs11_store):
    pkcs11_store.create_key_set("p")
    for slot in range(5):
        key = pkcs11_store._key(("p", slot, 1))
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.DECRYPT] is False and key[Attribute.WRAP] is False
        assert key[Attribute.EXTRACTABLE] is (slot in (1, 2))  # only the resolver's keys can be wrapped out
        with pytest.raises(AttributeSensitive):  # the token refuses to reveal the key's bytes
            key[Attribute.VALUE]
    with pytest.raises(KeystoreError, match="KeyUnextractable"):
        pkcs11_store.export_master("p", 0, 1)
    default = KeyPolicy.default()
    pkcs11_store.create_key_set("shared", policy=KeyPolicy((*default.slots[:4], replace(default.slots[4], diversified=False))))
    with pytest.raises(KeystoreError, match="never leave"):  # a shared master outside the resolver's slots
        pkcs11_store.chip_key(KeyRef("shared", 4, 1))


def test_keystore_json_holds_no_key_material(pkcs11_store):
    pkcs11_store.create_key_set("p")
    meta_key = pkcs11_store.meta_read_key("p")
    text = pkcs11_store.path.read_text()
    assert meta_key.hex() not in text.lower() and '"backend": "pkcs11"' in text


def test_reopen_rotate_sign_and_export(pkcs11_store, softhsm, rsa_pair):
    pkcs11_store.create_key_set("p")
    old = pkcs11_store.chip_key(KeyRef("p", 2, 1, UID))
    pkcs11_store.close()
    ws = Workspace(pkcs11_store.path.parent)
    with open_keystore(ws, pin=softhsm["pin"]) as store:
        assert store.rotate("p", 2).version == 2
        assert store.chip_key(KeyRef("p", 2, 1, UID)) == old
        pem = store.manifest_public_key_pem()
        verify_manifest(b"batch", store.sign_manifest(b"batch"), pem)
        blob = export_for_resolver(store, "p", rsa_pair[1])
        meta = store.meta_read_key("p")
    resolved = unwrap_export(blob, rsa_pair[0], signer_public_pem=pem)
    assert resolved.meta_read_key() == meta
    assert resolved.file_read_key(UID, 1) == old


def test_wrong_pin_and_missing_token_are_one_line_errors(pkcs11_store, softhsm):
    pkcs11_store.create_key_set("p")
    pkcs11_store.close()  # a token login is per process: log out before trying a wrong PIN
    ws = Workspace(pkcs11_store.path.parent)
    with pytest.raises(KeystoreError, match="PinIncorrect"):
        open_keystore(ws, pin="0000")  # refused at once, even by a command that only lists metadata
    with open_keystore(ws, pin="") as store:
        assert store.key_versions("p")[0] == 1  # metadata needs no PIN
        with pytest.raises(KeystoreError, match="TAGSMITH_PKCS11_PIN"):
            store.sign_manifest(b"x")
    doc = json.loads(ws.keystore.read_text())
    doc["pkcs11"]["token_label"] = "no-such-token"
    ws.keystore.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="NoSuchToken"):
        open_keystore(ws, pin=softhsm["pin"])


def test_two_handles_in_one_process_share_the_token_login(pkcs11_store, softhsm):
    pkcs11_store.create_key_set("p")
    keys = pkcs11_store.chip_keys("p", UID)
    with open_keystore(Workspace(pkcs11_store.path.parent), pin=softhsm["pin"]) as second:
        assert second.chip_keys("p", UID) == keys


def test_cli_on_the_token(softhsm, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tagsmith.cli import app

    monkeypatch.setenv("TAGSMITH_PKCS11_PIN", softhsm["pin"])
    home = ["--home", str(tmp_path / "ws")]
    runner = CliRunner()
    init = runner.invoke(app, [*home, "keys", "init", "--backend", "pkcs11", "--module", softhsm["module"],
                               "--token-label", softhsm["token_label"], "--json"])
    assert init.exit_code == 0, init.exception
    assert json.loads(init.stdout)["backend"] == "pkcs11"
    assert runner.invoke(app, [*home, "keys", "create", "--product", "lamp"]).exit_code == 0
    listed = runner.invoke(app, [*home, "keys", "list", "--json"])
    assert json.loads(listed.stdout)["key_sets"][0]["key_set"] == "lamp"
    derived = runner.invoke(app, [*home, "keys", "derive", "--product", "lamp", "--slot", "2", "--uid", UID.hex(),
                                  "--reveal", "--json"])
    assert derived.exit_code == 0 and len(json.loads(derived.stdout)["key"]) == 32


def test_the_audit_anchor_lives_on_the_token(pkcs11_store, softhsm):
    """keystore.json is not authenticated for this backend, so the token keeps the audit log's anchor."""
    from tagsmith import VerificationError
    from tagsmith.keystore.audit import check_log

    pkcs11_store.create_key_set("p")
    pkcs11_store.close()
    ws = Workspace(pkcs11_store.path.parent)
    with open_keystore(ws, pin=softhsm["pin"]) as store:
        store.reveal_chip_key(KeyRef("p", 2, 1, UID))  # append-only, and still moves the anchor
        anchor = store.audit_anchor()
        assert anchor["records"] == 7 and "audit" not in json.loads(ws.keystore.read_text())
        assert check_log(ws.audit_log, anchor).problem is None
        lines = ws.audit_log.read_bytes().splitlines(keepends=True)
        ws.audit_log.write_bytes(b"".join(lines[:-1]))  # the reveal's record removed
        assert check_log(ws.audit_log, store.audit_anchor()).problem == "1 record missing after #6"
        with pytest.raises(VerificationError, match="1 record missing after #6"):
            store.rotate("p", 2)
