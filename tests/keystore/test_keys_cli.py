"""`tagsmith keys ...`: the commands, and a scan proving no master key ever shows up anywhere."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tagsmith import ConfigError, KeystoreError, StateError, VerificationError
from tagsmith.cli import app
from tagsmith.keystore import open_keystore
from tagsmith.keystore.audit import read_audit
from tagsmith.keystore.export import unwrap_export
from tagsmith.workspace import Workspace

IMPORTED = {slot: bytes.fromhex(h) for slot, h in enumerate([
    "5A1E0000000000000000000000000A00", "5A1E1111111111111111111111111A11", "5A1E2222222222222222222222222A22",
    "5A1E3333333333333333333333333A33", "5A1E4444444444444444444444444A44"])}
UID = "04AABBCCDDEEFF"


@pytest.fixture
def cli(tmp_path, passphrase, monkeypatch):
    """Run `tagsmith --home WS ...` in-process; collects everything printed, for the scan."""
    home = tmp_path / "ws"
    monkeypatch.setenv("TAGSMITH_KEYSTORE_PASSPHRASE", passphrase)
    runner, seen = CliRunner(), []

    def run(*args: str, input: str | None = None, env: dict | None = None):
        result = runner.invoke(app, ["--home", str(home), *args], input=input, env=env)
        seen.extend([result.stdout, result.stderr, str(result.exception or "")])
        return result

    run.home, run.seen = home, seen
    return run


def _ok(result):
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def test_keys_workflow(cli, tmp_path, rsa_pair):
    _ok(cli("keys", "init", "--scrypt-cost", "1024"))
    text_id = cli("keys", "create", "--product", "lamp", "--system-id", "LAMP")  # hex, as the product file has it
    assert isinstance(text_id.exception, ConfigError) and "--system-id is not hex" in str(text_id.exception)
    created = json.loads(_ok(cli("keys", "create", "--key-set", "lamp", "--system-id", "4C414D50", "--json")).stdout)
    assert created["key_set"] == "lamp" and created["system_id"] == b"LAMP".hex().upper()
    assert [s["diversified"] for s in created["slots"]] == [True, False, True, True, True]
    key_file = tmp_path / "k.hex"
    key_file.write_text(IMPORTED[3].hex())
    _ok(cli("keys", "import", "--product", "lamp", "--slot", "3", "--file", str(key_file)))
    _ok(cli("keys", "import", "--product", "lamp", "--slot", "4", input=IMPORTED[4].hex() + "\n"))
    rotated = json.loads(_ok(cli("keys", "rotate", "--product", "lamp", "--slot", "2", "--json")).stdout)
    assert rotated["version"] == 2
    listed = json.loads(_ok(cli("keys", "list", "--json")).stdout)
    slots = listed["key_sets"][0]["slots"]
    assert [s["current_version"] for s in slots] == [1, 1, 2, 2, 2]
    assert "lamp" in _ok(cli("keys", "list")).stdout
    pem = tmp_path / "resolver.pub.pem"
    pem.write_text(rsa_pair[1])
    out = tmp_path / "lamp.keys.json"
    exported = json.loads(_ok(cli("keys", "export", "--product", "lamp", "--for", str(pem), "--out", str(out),
                                  "--json")).stdout)
    keys = unwrap_export(out, rsa_pair[0])
    assert keys.payload_sha256 == exported["payload_sha256"] and sorted(keys.file_read_masters) == [1, 2]
    derived = json.loads(_ok(cli("keys", "derive", "--product", "lamp", "--slot", "3", "--uid", UID, "--reveal",
                                 "--json")).stdout)
    with open_keystore(Workspace(cli.home)) as store:
        from tagsmith.keystore import KeyRef
        assert derived["key"] == store.chip_key(KeyRef("lamp", 3, 2, bytes.fromhex(UID))).hex().upper()
    assert [r["op"] for r in read_audit(cli.home / "audit.log")] == \
        ["init"] + ["create"] * 5 + ["import", "import", "rotate", "export", "derive-reveal"]
    audit = json.loads(_ok(cli("keys", "audit", "--last", "2", "--json")).stdout)
    assert audit["intact"] and audit["records"] == 11 and [r["op"] for r in audit["last"]] == ["export", "derive-reveal"]
    assert audit["anchored"] == 11 and audit["not_anchored"] == 0  # export and reveal only append, yet move the anchor
    assert "hash chain intact" in _ok(cli("keys", "audit")).stdout
    log = cli.home / "audit.log"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:3] + lines[4:]))  # someone deletes the record of one key creation
    tampered = cli("keys", "audit", "--json")
    assert isinstance(tampered.exception, VerificationError) and "record #3 edited" in str(tampered.exception)
    assert json.loads(tampered.stdout)["first_broken"] == 3


def test_derive_needs_reveal_and_warns(cli):
    _ok(cli("keys", "init", "--scrypt-cost", "1024"))
    _ok(cli("keys", "create", "--product", "lamp"))
    refused = cli("keys", "derive", "--product", "lamp", "--slot", "2", "--uid", UID)
    assert isinstance(refused.exception, ConfigError) and "--reveal" in str(refused.exception)
    shown = _ok(cli("keys", "derive", "--product", "lamp", "--slot", "2", "--uid", UID, "--reveal"))
    assert "WARNING" in shown.stderr and len(shown.stdout.strip()) == 32
    shared = cli("keys", "derive", "--product", "lamp", "--slot", "1", "--uid", UID, "--reveal")
    assert isinstance(shared.exception, StateError)


def test_diversify_reproduces_nxp_examples(cli, tmp_path):
    master = tmp_path / "master.hex"
    master.write_text("00112233445566778899AABBCCDDEEFF\n")
    nxp = _ok(cli("keys", "diversify", "--key-file", str(master), "--uid", "04782E21801D80",
                  "--aid", "3042F5", "--system-id", "4E585020416275"))
    assert nxp.stdout.strip() == "A8DD63A3B89D54B37CA802473FDA9175"
    short = json.loads(_ok(cli("keys", "diversify", "--key-file", "-", "--input", "04DEADBEEFFEED", "--json",
                               input="F3F9377698707B688EAF84ABE39E3791\n")).stdout)
    assert short == {"input": "04DEADBEEFFEED", "key": "0BB408BAFF98B6EE9F2E1585777F6A51"}
    from_env = json.loads(_ok(cli("keys", "diversify", "--key-file", "env:LINE_MASTER", "--input", "04DEADBEEFFEED",
                                  "--json", env={"LINE_MASTER": "F3F9377698707B688EAF84ABE39E3791"})).stdout)
    assert from_env == short
    both = cli("keys", "diversify", "--key-file", str(master), "--uid", "04", "--input", "04")
    assert isinstance(both.exception, ConfigError)


def test_diversify_refuses_a_master_on_the_command_line(tmp_path):
    """`--master HEX` would show the key to every user (ps): exit 2, one line saying how instead."""
    secret = "00112233445566778899AABBCCDDEEFF"
    refused = subprocess.run([_tagsmith(), "keys", "diversify", "--master", secret, "--input", "04DEADBEEFFEED"],
                             capture_output=True, text=True, env={**os.environ, "TAGSMITH_HOME": str(tmp_path)})
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "--key-file PATH" in refused.stderr and "--key-file -" in refused.stderr and "env:VAR" in refused.stderr
    assert secret not in refused.stderr + refused.stdout


def test_passphrase_prompt_when_env_is_unset(cli, passphrase, monkeypatch):
    _ok(cli("keys", "init", "--scrypt-cost", "1024"))
    monkeypatch.delenv("TAGSMITH_KEYSTORE_PASSPHRASE")
    no_terminal = cli("keys", "list")  # nowhere to hide a prompt: say which variable to set
    assert isinstance(no_terminal.exception, KeystoreError) and "TAGSMITH_KEYSTORE_PASSPHRASE" in str(no_terminal.exception)
    monkeypatch.setattr("tagsmith.commands.context.at_terminal", lambda: True)
    assert _ok(cli("keys", "list", "--json", input=passphrase + "\n"))
    wrong = cli("keys", "list", input="nope-nope\n")
    assert isinstance(wrong.exception, KeystoreError)


def test_no_master_key_appears_anywhere(cli, tmp_path, rsa_pair, passphrase):
    """Keystore file, audit log, export file, every output and error: no master in any encoding."""
    _ok(cli("keys", "init", "--scrypt-cost", "1024"))
    _ok(cli("keys", "create", "--product", "lamp"))
    key_dir = tmp_path / "keys-in"
    key_dir.mkdir()
    for slot, master in IMPORTED.items():
        (key_dir / f"{slot}.hex").write_text(master.hex().upper())
        _ok(cli("keys", "import", "--product", "lamp", "--slot", str(slot), "--file", str(key_dir / f"{slot}.hex")))
    (key_dir / "bad.hex").write_text(IMPORTED[0].hex()[:-1] + "Z")
    pem = tmp_path / "r.pem"
    pem.write_text(rsa_pair[1])
    for args in [("keys", "list"), ("keys", "list", "--json"), ("keys", "rotate", "--product", "lamp", "--slot", "0"),
                 ("keys", "export", "--product", "lamp", "--for", str(pem), "--out", str(tmp_path / "e.json")),
                 ("keys", "manifest-key"),
                 *[("keys", "derive", "--product", "lamp", "--slot", str(s), "--uid", UID, "--reveal") for s in range(5)],
                 ("keys", "import", "--product", "lamp", "--slot", "2", "--file", str(key_dir / "2.hex")),
                 ("keys", "import", "--product", "lamp", "--slot", "2", "--file", str(key_dir / "bad.hex"))]:
        cli(*args)
    cli("keys", "list", env={"TAGSMITH_KEYSTORE_PASSPHRASE": "wrong passphrase"})
    with open_keystore(Workspace(cli.home), passphrase) as store:
        masters = [bytes.fromhex(h) for h in store._masters.values()] + [store._manifest_seed]
    assert len(masters) == 5 + 5 + 1 + 1  # generated v1, imported v2, rotated slot 0 v3, manifest seed
    haystacks = [text.encode() for text in cli.seen] + [
        (cli.home / "keystore.json").read_bytes(), (cli.home / "audit.log").read_bytes(),
        (tmp_path / "e.json").read_bytes()]
    for master in masters:
        needles = [master, master.hex().encode(), master.hex().upper().encode(), base64.b64encode(master)]
        for hay in haystacks:
            assert not any(n in hay for n in needles)


def _tagsmith() -> str:
    found = shutil.which("tagsmith", path=str(Path(sys.executable).parent))
    assert found, "the tagsmith console script is not installed next to this Python"
    return found


def test_console_script_wrong_passphrase_is_one_line_exit_5(tmp_path, passphrase):
    home = tmp_path / "ws"
    env = {**os.environ, "TAGSMITH_HOME": str(home), "TAGSMITH_KEYSTORE_PASSPHRASE": passphrase}
    subprocess.run([_tagsmith(), "keys", "init", "--scrypt-cost", "1024"], env=env, check=True, capture_output=True)
    imported = subprocess.run([_tagsmith(), "keys", "create", "--product", "lamp"], env=env, capture_output=True)
    assert imported.returncode == 0
    piped = subprocess.run([_tagsmith(), "keys", "import", "--product", "lamp", "--slot", "4"], env=env,
                           input=IMPORTED[4].hex(), capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    wrong = subprocess.run([_tagsmith(), "keys", "list"], capture_output=True, text=True,
                           env={**env, "TAGSMITH_KEYSTORE_PASSPHRASE": "definitely wrong"})
    assert wrong.returncode == 5
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open keystore") and "Traceback" not in wrong.stderr
    assert wrong.stdout == ""


def test_keys_init_defaults_to_scrypt_2_17_and_says_when_a_cost_is_lower(cli):
    """The scrypt default is N=2^17 (it was 2^15, and 2^10 in places); --scrypt-cost chooses, with a floor."""
    _ok(cli("keys", "init"))
    assert json.loads((cli.home / "keystore.json").read_text())["kdf"]["n"] == 2**17
    low = _ok(cli("--home", str(cli.home / "low"), "keys", "init", "--scrypt-cost", "1024"))
    assert "below the default 131072" in low.stderr and "throwaway" in low.stderr
    too_low = cli("--home", str(cli.home / "lower"), "keys", "init", "--scrypt-cost", "512")
    assert isinstance(too_low.exception, ConfigError) and "2^10" in str(too_low.exception)


def test_keys_init_refuses_a_weak_passphrase(cli):
    weak = cli("keys", "init", "--scrypt-cost", "1024", env={"TAGSMITH_KEYSTORE_PASSPHRASE": "aaaaaaaaaaaa"})
    assert isinstance(weak.exception, ConfigError) and "weak keystore passphrase" in str(weak.exception)
    assert "aaaaaaaaaaaa" not in str(weak.exception) and not (cli.home / "keystore.json").exists()
