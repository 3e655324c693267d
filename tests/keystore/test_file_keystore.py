"""File keystore: round trip, versions, and every way a file can be wrong or a save can die."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tagsmith import ConfigError, KeystoreError, NotFoundError, StateError, VerificationError
from tagsmith.keystore import KeyRef, init_keystore, open_keystore
from tagsmith.keystore.audit import check_log, read_audit
from tagsmith.keystore.diversify import diversification_input, diversify_aes128
from tagsmith.keystore.model import fingerprint_from_kcv
from tagsmith.keystore.signing import verify_manifest
from tagsmith.workspace import Workspace

UID = bytes.fromhex("04A1B2C3D4E5F6")
UID2 = bytes.fromhex("04010203040506")
MASTER = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")


@pytest.fixture
def populated(file_store):
    file_store.create_key_set("prod", b"SYS")
    return file_store


def _state(workspace, passphrase) -> list[dict]:
    with open_keystore(workspace, passphrase) as store:
        return [i.to_dict() for i in store.key_sets()]


# ---- normal use ---------------------------------------------------------------------------
def test_round_trip_gives_an10922_chip_keys(populated, workspace, passphrase):
    populated.import_master("prod", 3, MASTER)
    with open_keystore(workspace, passphrase) as store:
        keys = store.chip_keys("prod", UID)
        other = store.chip_keys("prod", UID2)
        assert keys.versions == (1, 1, 1, 2, 1)
        assert keys.key(3) == diversify_aes128(MASTER, diversification_input(UID, 3, b"SYS"))
        assert len(set(keys.keys)) == 5
        assert keys.meta_read_key == other.meta_read_key == store.meta_read_key("prod")
        assert keys.file_read_key != other.file_read_key
        assert keys.file_read_key == store.file_read_key("prod", UID)


def test_rotate_keeps_old_versions_derivable(populated, workspace, passphrase):
    old = populated.chip_key(KeyRef("prod", 2, 1, UID))
    assert populated.rotate("prod", 2) == KeyRef("prod", 2, 2)
    with open_keystore(workspace, passphrase) as store:
        assert store.key_versions("prod")[2] == 2
        assert store.chip_key(KeyRef("prod", 2, 1, UID)) == old
        assert store.chip_keys("prod", UID).key(2) != old
        assert store.chip_keys("prod", UID, versions={2: 1}).key(2) == old
        assert [v.version for v in store.info("prod").versions[2]] == [1, 2]


def test_import_rules(populated, workspace, passphrase):
    assert populated.import_master("prod", 0, MASTER, version=9).version == 9
    populated.import_master("prod", 0, bytes(range(16)), version=5)  # an older version for older tags
    assert populated.key_versions("prod")[0] == 9
    with pytest.raises(StateError, match="never overwritten"):
        populated.import_master("prod", 0, bytes(range(1, 17)), version=9)
    with pytest.raises(ConfigError, match="factory default"):
        populated.import_master("prod", 1, bytes(16))
    with pytest.raises(StateError, match="already stored"):
        populated.import_master("prod", 4, MASTER)
    assert [v.version for v in populated.info("prod").versions[4]] == [1]  # nothing half-added
    assert [v.version for v in open_keystore(workspace, passphrase).info("prod").versions[4]] == [1]


def test_a_refused_import_leaves_no_cached_key_behind(populated, workspace, passphrase):
    """The refused import had expanded its key at (prod, 4, 2); the next key stored there must not reuse it."""
    populated.import_master("prod", 0, MASTER, version=9)
    with pytest.raises(StateError, match="already stored"):
        populated.import_master("prod", 4, MASTER)
    assert populated.rotate("prod", 4).version == 2  # a stale check value would call it a duplicate too
    rotated = populated.chip_key(KeyRef("prod", 4, 2, UID))
    with open_keystore(workspace, passphrase) as fresh:  # nothing cached: everything from the stored key
        assert fresh.chip_key(KeyRef("prod", 4, 2, UID)) == rotated
        assert fresh.info("prod").versions[4][-1].fingerprint == populated.info("prod").versions[4][-1].fingerprint
        assert fresh.info("prod").versions[4][-1].fingerprint == fingerprint_from_kcv(fresh._check_value(("prod", 4, 2)))


def test_unknown_key_set_version_and_duplicate_create(populated):
    with pytest.raises(NotFoundError):
        populated.chip_keys("nope", UID)
    with pytest.raises(NotFoundError, match="no key version 7"):
        populated.chip_key(KeyRef("prod", 2, 7, UID))
    with pytest.raises(ConfigError, match="UID"):
        populated.chip_key(KeyRef("prod", 2, 1))
    with pytest.raises(StateError):
        populated.create_key_set("prod")


def test_reveal_is_audited_and_refuses_the_shared_slot(populated, workspace):
    key = populated.reveal_chip_key(KeyRef("prod", 2, 1, UID))
    assert key == populated.chip_key(KeyRef("prod", 2, 1, UID))
    with pytest.raises(StateError, match="shared"):
        populated.reveal_chip_key(KeyRef("prod", 1, 1, UID))
    record = read_audit(workspace.audit_log)[-1]
    assert record["op"] == "derive-reveal" and record["uid"] == UID.hex().upper() and record["slot"] == 2
    assert {"time", "user", "host", "fingerprint"} <= record.keys()


def test_manifest_signature(file_store, workspace, passphrase):
    signature = file_store.sign_manifest(b"manifest")
    pem = open_keystore(workspace, passphrase).manifest_public_key_pem()
    verify_manifest(b"manifest", signature, pem)
    with pytest.raises(VerificationError):
        verify_manifest(b"manifest!", signature, pem)
    file_store.verify_manifest(b"manifest", signature)
    with pytest.raises(VerificationError):
        file_store.verify_manifest(b"manifest", signature[:-1] + bytes([signature[-1] ^ 1]))


def test_init_refuses_existing_keystore_and_short_passphrase(file_store, workspace, tmp_path):
    with pytest.raises(StateError, match="already exists"):
        init_keystore(workspace, passphrase="another passphrase", scrypt_n=1024)
    with pytest.raises(ConfigError, match="at least 12"):
        init_keystore(type(workspace)(tmp_path / "other"), passphrase="short", scrypt_n=1024)


@pytest.mark.parametrize("weak, reason", [
    ("aaaaaaaa", "only 8 characters"), ("aaaaaaaaaaaaaaaa", "different characters"),
    ("abcabcabcabcabc", "different characters"), ("abcdefabcdefabcdef", "repeated"),
    ("123456789012", "consecutive"), ("abcdefghijklmnop", "consecutive"), ("zyxwvutsrqponm", "consecutive"),
])
def test_weak_passphrases_are_refused_with_the_reason(tmp_path, weak, reason):
    """A weak passphrase (`aaaaaaaa` was once accepted) is refused with the reason, never echoed."""
    from tagsmith.keystore.file import check_passphrase

    with pytest.raises(ConfigError, match=reason) as refused:
        init_keystore(Workspace(tmp_path / "ws"), passphrase=weak, scrypt_n=1024)
    assert weak not in str(refused.value) and not (tmp_path / "ws" / "keystore.json").exists()
    for fine in ("tagsmith-demo-passphrase", "correct horse battery", "test passphrase 1", "bench-pass-123"):
        check_passphrase(fine)


# ---- damaged files and wrong secrets ------------------------------------------------------
def _edit(workspace, change) -> None:
    doc = json.loads(workspace.keystore.read_text())
    change(doc)
    workspace.keystore.write_text(json.dumps(doc))


def _flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_wrong_passphrase_is_one_clear_error_and_changes_nothing(populated, workspace):
    before = workspace.keystore.read_bytes()
    with pytest.raises(KeystoreError, match="wrong passphrase, or the file was modified") as err:
        open_keystore(workspace, "not the passphrase")
    assert "\n" not in str(err.value) and "cannot be told apart" in str(err.value)
    assert workspace.keystore.read_bytes() == before
    assert read_audit(workspace.audit_log)[-1]["op"] == "unlock-failed"


@pytest.mark.parametrize("change", [
    pytest.param(lambda d: d.update(tag=_flip_b64(d["tag"])), id="gcm-tag"),
    pytest.param(lambda d: d.update(ciphertext=_flip_b64(d["ciphertext"])), id="ciphertext"),
    pytest.param(lambda d: d["kdf"].update(p=2), id="header-kdf-param"),
    pytest.param(lambda d: d["cipher"].update(nonce=_flip_b64(d["cipher"]["nonce"])), id="nonce"),
])
def test_tampering_fails_like_a_wrong_passphrase(populated, workspace, passphrase, change):
    good = workspace.keystore.read_bytes()
    expected = _state(workspace, passphrase)
    _edit(workspace, change)
    with pytest.raises(KeystoreError, match="wrong passphrase, or the file was modified"):
        open_keystore(workspace, passphrase)
    workspace.keystore.write_bytes(good)
    assert _state(workspace, passphrase) == expected


def test_absurd_scrypt_cost_in_header_is_refused_before_any_work(populated, workspace, passphrase):
    _edit(workspace, lambda d: d["kdf"].update(n=2**30))
    start = time.monotonic()
    with pytest.raises(KeystoreError, match="damaged"):
        open_keystore(workspace, passphrase)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.5, 0.98])
def test_truncated_file_is_a_clear_error_and_never_a_partial_load(populated, workspace, passphrase, fraction):
    good = workspace.keystore.read_bytes()
    workspace.keystore.write_bytes(good[: int(len(good) * fraction)])
    with pytest.raises(KeystoreError, match="damaged|truncated|not a tagsmith keystore"):
        open_keystore(workspace, passphrase)


def test_truncated_base64_body_is_caught_by_gcm(populated, workspace, passphrase):
    _edit(workspace, lambda d: d.update(ciphertext=base64.b64encode(base64.b64decode(d["ciphertext"])[:-5]).decode()))
    with pytest.raises(KeystoreError, match="wrong passphrase, or the file was modified"):
        open_keystore(workspace, passphrase)


def test_unknown_format_version(populated, workspace, passphrase):
    _edit(workspace, lambda d: d.update(version=99))
    with pytest.raises(KeystoreError, match="format version 99"):
        open_keystore(workspace, passphrase)


def test_missing_keystore_is_not_found(workspace, passphrase):
    with pytest.raises(NotFoundError, match="keys init"):
        open_keystore(workspace, passphrase)


# ---- crashes during save ------------------------------------------------------------------
def test_failed_replace_leaves_previous_keystore(populated, workspace, passphrase, monkeypatch):
    before, expected = workspace.keystore.read_bytes(), _state(workspace, passphrase)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(KeystoreError, match="previous file is unchanged"):
        populated.rotate("prod", 2)
    monkeypatch.undo()
    assert workspace.keystore.read_bytes() == before
    assert _state(workspace, passphrase) == expected
    assert populated.key_versions("prod")[2] == 1  # the in-memory store rolled back too
    assert not list(workspace.home.glob(".keystore.json.*"))
    assert populated.rotate("prod", 2).version == 2  # and it still works


KILL_CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from tagsmith.keystore import open_keystore
    from tagsmith.workspace import Workspace

    real = getattr(os, sys.argv[3])

    def stall(*args):
        if sys.argv[3] == "fsync" and not os.readlink(f"/proc/self/fd/{args[0]}").endswith(".tmp"):
            return real(*args)  # the audit record's fsync: it comes first and goes through
        print("STALLED", flush=True)
        time.sleep(60)

    setattr(os, sys.argv[3], stall)
    store = open_keystore(Workspace(Path(sys.argv[1])), sys.argv[2])
    store.rotate("prod", 2)
""")


@pytest.mark.parametrize("stall_at", ["fsync", "replace"])
def test_sigkill_during_save_leaves_previous_keystore(populated, workspace, passphrase, stall_at):
    before, expected = workspace.keystore.read_bytes(), _state(workspace, passphrase)
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(workspace.home), passphrase, stall_at],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "STALLED"
        assert list(workspace.home.glob(".keystore.json.*.tmp"))  # killed mid-save, temp file written
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert workspace.keystore.read_bytes() == before
    assert _state(workspace, passphrase) == expected
    with open_keystore(workspace, passphrase) as store:
        found = check_log(workspace.audit_log, store.audit_anchor())
        assert found.problem is None and found.unanchored == 1  # recorded before the save, never anchored
        assert store.rotate("prod", 2).version == 2
        assert check_log(workspace.audit_log, store.audit_anchor()).unanchored == 0
    assert not list(workspace.home.glob(".keystore.json.*.tmp"))  # the stale temp was swept


def test_concurrent_writer_is_refused_not_overwritten(populated, workspace, passphrase):
    other = open_keystore(workspace, passphrase)
    populated.rotate("prod", 2)
    with pytest.raises(KeystoreError, match="changed on disk"):
        other.rotate("prod", 3)
    versions = open_keystore(workspace, passphrase).key_versions("prod")
    assert versions[2] == 2 and versions[3] == 1


# ---- scrypt cost: a choice with a floor -----------------------------------------------------
def _as_version_1(workspace, passphrase: str) -> None:
    """Rewrite the keystore as tagsmith wrote it before the cost was a choice: format 1, N=2^10, no anchor."""
    from Crypto.Cipher import AES

    from tagsmith.keystore.file import _derive, canonical

    doc = json.loads(workspace.keystore.read_text())
    kek = _derive(passphrase, doc["kdf"])
    plain = AES.new(kek, AES.MODE_GCM, nonce=base64.b64decode(doc["cipher"]["nonce"])).decrypt(
        base64.b64decode(doc["ciphertext"]))
    header = {"format": doc["format"], "version": 1, "backend": "file", "kdf": doc["kdf"],
              "cipher": {"name": "AES-256-GCM", "nonce": base64.b64encode(os.urandom(12)).decode()}}
    cipher = AES.new(kek, AES.MODE_GCM, nonce=base64.b64decode(header["cipher"]["nonce"]))
    cipher.update(canonical(header))
    body, tag = cipher.encrypt_and_digest(plain)
    workspace.keystore.write_text(json.dumps({**header, "ciphertext": base64.b64encode(body).decode(),
                                              "tag": base64.b64encode(tag).decode()}))


def test_an_old_keystore_opens_and_is_rewritten_at_the_current_cost(populated, workspace, passphrase):
    """Format 1 (N=2^10) stays readable; its next write re-encrypts it as format 2 at N=2^17, fresh salt."""
    expected = _state(workspace, passphrase)
    _as_version_1(workspace, passphrase)
    old = json.loads(workspace.keystore.read_text())
    assert old["version"] == 1 and old["kdf"]["n"] == 2**10
    with open_keystore(workspace, passphrase) as store:
        assert [i.to_dict() for i in store.key_sets()] == expected  # read as it is
        store.rotate("prod", 2)
    new = json.loads(workspace.keystore.read_text())
    assert new["version"] == 2 and new["kdf"]["n"] == 2**17 and new["kdf"]["salt"] != old["kdf"]["salt"]
    assert new["audit"]["records"] == len(read_audit(workspace.audit_log))  # and now anchors the log
    with open_keystore(workspace, passphrase) as store:
        assert store.key_versions("prod")[2] == 2
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        open_keystore(workspace, "not the passphrase at all")


def test_the_scrypt_cost_is_the_keystores_choice_within_bounds(workspace, tmp_path, passphrase):
    with init_keystore(workspace, passphrase=passphrase, scrypt_n=2**11):
        pass
    assert json.loads(workspace.keystore.read_text())["kdf"]["n"] == 2**11  # kept, not raised on later writes
    for bad in (2**9, 3000, 2**21):
        with pytest.raises(ConfigError, match="power of two from 2\\^10 to 2\\^20"):
            init_keystore(Workspace(tmp_path / f"ws{bad}"), passphrase=passphrase, scrypt_n=bad)
