"""docs/resolver.md "Key export" is enough to open both export forms with `cryptography` alone.

The resolver code is the document's own worked example, taken from the page and run as written; it
imports nothing from tagsmith. The exports are made, and the answers checked, through the console
script only (`keys export`, `keys list`, `keys derive --reveal`).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, x25519

TAGSMITH = str(Path(sys.executable).with_name("tagsmith"))
DOC = Path(__file__).resolve().parents[2] / "docs" / "resolver.md"
KEY_SET, SYSTEM_ID, UID = "doc-ks", "4155524F5241", "04AABBCCDDEEFF"
ENV = {"TAGSMITH_KEYSTORE_PASSPHRASE": "resolver doc passphrase, long enough 7"}


def _tagsmith(home: Path, *args: str) -> str:
    env = {**os.environ, **ENV, "COLUMNS": "200"}
    env.pop("TAGSMITH_HOME", None)
    run = subprocess.run([TAGSMITH, "--home", str(home), *args], capture_output=True, text=True, env=env,
                         stdin=subprocess.DEVNULL, timeout=300)
    assert run.returncode == 0, (args, run.stdout, run.stderr)
    return run.stdout


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


@pytest.fixture(scope="module")
def doc_code() -> dict:
    """The worked example's Python, exactly as the page shows it, run in a fresh namespace."""
    section = _section(DOC.read_text(), "Key export")
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    (code,) = [b for b in blocks if "def open_export" in b]
    assert not re.search(r"^\s*(from|import)\s+tagsmith", code, re.M)
    namespace: dict = {"__name__": "resolver_doc"}
    exec(compile(code, str(DOC), "exec"), namespace)
    assert not [m for m in sys.modules if m == "resolver_doc"]
    return namespace


@pytest.fixture(scope="module")
def factory(tmp_path_factory) -> dict:
    """A workspace with a key set (two file-read versions), the line key, and one export per form."""
    root = tmp_path_factory.mktemp("resolver-doc")
    home = root / "ws"
    _tagsmith(home, "keys", "init")
    _tagsmith(home, "keys", "create", "--key-set", KEY_SET, "--system-id", SYSTEM_ID)
    _tagsmith(home, "keys", "rotate", "--key-set", KEY_SET, "--slot", "2")
    line_pem = _tagsmith(home, "keys", "manifest-key").encode()
    privates = {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=3072),
                "x25519": x25519.X25519PrivateKey.generate()}
    forms = {}
    for name, private in privates.items():
        public = root / f"{name}.pub.pem"
        public.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
        out = root / f"{name}.export.json"
        made = json.loads(_tagsmith(home, "keys", "export", "--key-set", KEY_SET, "--for", str(public),
                                    "--out", str(out), "--json"))
        forms[name] = {"path": out, "made": made, "private_pem": private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}
    listed = json.loads(_tagsmith(home, "keys", "list", "--json"))
    (info,) = [k for k in listed["key_sets"] if k["key_set"] == KEY_SET]
    return {"home": home, "line_pem": line_pem, "forms": forms, "info": info}


def _revealed(home: Path, slot: int, version: int) -> bytes:
    shown = json.loads(_tagsmith(home, "keys", "derive", "--key-set", KEY_SET, "--slot", str(slot), "--version",
                                 str(version), "--uid", UID, "--reveal", "--json"))
    return bytes.fromhex(shown["key"])


@pytest.mark.parametrize("form", ["rsa", "x25519"])
def test_the_document_opens_the_export(doc_code, factory, form):
    export = factory["forms"][form]
    raw = export["path"].read_bytes()
    key_set = doc_code["open_export"](raw, export["private_pem"], factory["line_pem"])
    envelope = json.loads(raw)
    assert envelope["wrapping"]["scheme"] == export["made"]["wrapping"]
    assert envelope["wrapping"]["recipient_fingerprint"] == export["made"]["recipient_fingerprint"]
    assert envelope["payload_sha256"] == export["made"]["payload_sha256"]
    assert key_set["key_set"] == KEY_SET and key_set["system_id"] == SYSTEM_ID
    assert {k["role"] for k in key_set["keys"]} == {"sdm-meta-read", "sdm-file-read"}
    assert [p["role"] for p in key_set["policy"]] == [
        "app-master", "sdm-meta-read", "sdm-file-read", "proprietary-write", "spare"]

    # every key is the one `keys list` fingerprints, and the keys work as the page says
    listed = {(s["slot"], v["version"]): v["fingerprint"] for s in factory["info"]["slots"] for v in s["versions"]}
    assert {(k["slot"], k["version"]): k["fingerprint"] for k in key_set["keys"]} == {
        key: fp for key, fp in listed.items() if key[0] in (1, 2)}
    # the shared meta-read master is never revealed at the factory: its fingerprint vouches for it
    assert doc_code["master_key_fingerprint"](doc_code["meta_read_key"](key_set, 1)) == listed[(1, 1)]
    for version in (1, 2):
        assert doc_code["file_read_key"](key_set, bytes.fromhex(UID), version) == _revealed(
            factory["home"], 2, version)


def test_both_forms_carry_the_same_payload(doc_code, factory):
    opened = [doc_code["open_export"](f["path"].read_bytes(), f["private_pem"], factory["line_pem"])
              for f in factory["forms"].values()]
    assert opened[0] == opened[1]
    assert len({f["made"]["payload_sha256"] for f in factory["forms"].values()}) == 1


@pytest.mark.parametrize("form", ["rsa", "x25519"])
def test_the_documented_checks_refuse_a_changed_or_foreign_export(doc_code, factory, form):
    export = factory["forms"][form]
    envelope = json.loads(export["path"].read_bytes())
    envelope["created"] = "2030-01-01T00:00:00Z"
    with pytest.raises(InvalidSignature):
        doc_code["open_export"](json.dumps(envelope).encode(), export["private_pem"], factory["line_pem"])
    stranger = serialization.load_pem_private_key(export["private_pem"], None)
    other = (rsa.generate_private_key(public_exponent=65537, key_size=3072) if form == "rsa"
             else x25519.X25519PrivateKey.generate())
    assert type(other) is type(stranger)
    other_pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    with pytest.raises(ValueError, match="wrapped for another resolver key"):
        doc_code["open_export"](export["path"].read_bytes(), other_pem, factory["line_pem"])
