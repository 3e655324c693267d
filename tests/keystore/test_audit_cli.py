"""The key-operation audit log through the console script: `keys audit` against the anchor the keystore keeps, and
key operations that are refused when their audit record cannot be written."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

PASSPHRASE = "audit test passphrase"
UID = "04AABBCCDDEEFF"


def _tagsmith() -> str:
    found = shutil.which("tagsmith", path=str(Path(sys.executable).parent))
    assert found, "the tagsmith console script is not installed next to this Python"
    return found


def _runner(home: Path):
    env = {**os.environ, "TAGSMITH_HOME": str(home), "TAGSMITH_KEYSTORE_PASSPHRASE": PASSPHRASE}

    def run(*args: str, max_file_size: int | None = None) -> subprocess.CompletedProcess:
        def limit() -> None:  # a disk that fills up at this size (works for root, unlike chmod)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, max_file_size))

        return subprocess.run([_tagsmith(), *args], env=env, capture_output=True, text=True,
                              preexec_fn=limit if max_file_size is not None else None)

    run.home, run.log = home, home / "audit.log"
    return run


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A workspace with 7 audit records: init, the 5 masters of key set lamp, one rotation."""
    run = _runner(tmp_path_factory.mktemp("audit") / "ws")
    for args in (("keys", "init", "--scrypt-cost", "1024"), ("keys", "create", "--product", "lamp"),
                 ("keys", "rotate", "--product", "lamp", "--slot", "2")):
        assert run(*args).returncode == 0
    return run.home


@pytest.fixture
def ws(template, tmp_path):
    """A fresh copy of the template workspace for each test."""
    shutil.copytree(template, tmp_path / "ws")
    return _runner(tmp_path / "ws")


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip()


def test_an_intact_log_is_anchored(ws):
    result = ws("keys", "audit")
    assert result.returncode == 0 and "7 records; hash chain intact, 7 anchored in the keystore" in result.stdout


def _delete_last_two(log: Path) -> None:
    log.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:-2]))


def _edit_last(log: Path) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]) + lines[-1].replace(b'"version": 2', b'"version": 9'))


def _tear_last(log: Path) -> None:
    raw = log.read_bytes()
    log.write_bytes(raw[:-40])  # a write cut short: the last line ends mid-record, without its newline


@pytest.mark.parametrize("tamper, said", [
    (_delete_last_two, "2 records missing after #5"),
    (_edit_last, "record #7 edited"),
    (lambda log: log.write_bytes(b""), "log emptied: 7 records missing after #0"),
    (lambda log: log.unlink(), "log deleted"),
    (_tear_last, "1 record missing after #6 (record #7 is torn)"),
])
def test_keys_audit_reports_each_tampering_in_one_line(ws, tamper, said):
    """Before the anchor each of these said 'hash chain intact' (or crashed with exit 70 on the torn line)."""
    tamper(ws.log)
    result = ws("keys", "audit")
    assert result.returncode == 6, (result.stdout, result.stderr)
    assert said in _one_line(result) and "tampered" in result.stderr and f"TAMPERED: {said}" in result.stdout
    before = (ws.home / "keystore.json").read_bytes()
    refused = ws("keys", "rotate", "--product", "lamp", "--slot", "3")  # appending would bless the damage
    assert refused.returncode == 6 and said in _one_line(refused)
    assert (ws.home / "keystore.json").read_bytes() == before


def test_records_after_the_anchor_are_reported_not_hidden(ws):
    """A failed unlock cannot write the keystore: its record chains on but is not anchored; a later change anchors it."""
    wrong = subprocess.run([_tagsmith(), "keys", "list"], capture_output=True, text=True,
                           env={**os.environ, "TAGSMITH_HOME": str(ws.home),
                                "TAGSMITH_KEYSTORE_PASSPHRASE": "a wrong passphrase here"})
    assert wrong.returncode == 5
    assert "1 after it, not anchored" in ws("keys", "audit").stdout
    assert ws("keys", "rotate", "--product", "lamp", "--slot", "3").returncode == 0
    assert "9 records; hash chain intact, 9 anchored" in ws("keys", "audit").stdout


CHANGES = [("keys", "create", "--product", "oven"), ("keys", "rotate", "--product", "lamp", "--slot", "2"),
           ("keys", "derive", "--product", "lamp", "--slot", "2", "--uid", UID, "--reveal")]


def _refused_and_unchanged(ws, result, keystore: bytes, log: bytes) -> None:
    assert result.returncode == 5, (result.stdout, result.stderr)
    assert "cannot write the audit log" in _one_line(result) and "nothing was done" in result.stderr
    assert result.stdout == "" and "recorded" not in result.stderr  # derive --reveal printed no key
    assert (ws.home / "keystore.json").read_bytes() == keystore and ws.log.read_bytes() == log


@pytest.mark.parametrize("args", CHANGES[1:])
@pytest.mark.parametrize("room", [0, 60], ids=["full", "room-for-part-of-a-record"])
def test_a_full_disk_refuses_the_key_operation_and_leaves_no_torn_record(ws, args, room):
    """Record first: no room for the record means no key change, no key shown, and no torn record left.

    The disk fills at the log's size (RLIMIT_FSIZE); `keys create` also opens the SQLite database,
    whose shared-memory file alone is larger, so it is tested with an immutable log below.
    """
    keystore, log = (ws.home / "keystore.json").read_bytes(), ws.log.read_bytes()
    _refused_and_unchanged(ws, ws(*args, max_file_size=len(log) + room), keystore, log)
    assert "7 records; hash chain intact, 7 anchored" in ws("keys", "audit").stdout


def test_an_unwritable_audit_log_refuses_create_rotate_and_reveal(ws):
    """An audit.log nobody may write (immutable: root too) refuses every key change, the keystore untouched."""
    keystore, log = (ws.home / "keystore.json").read_bytes(), ws.log.read_bytes()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(ws.log)]).returncode != 0:
        pytest.skip("chattr +i needs root (CAP_LINUX_IMMUTABLE) on a file system that has it")
    try:
        for args in CHANGES:
            _refused_and_unchanged(ws, ws(*args), keystore, log)
    finally:
        subprocess.run(["chattr", "-i", str(ws.log)], check=True)
    assert ws("keys", "create", "--product", "oven").returncode == 0  # writable again: works, and is recorded
    assert "12 records; hash chain intact, 12 anchored" in ws("keys", "audit").stdout


@pytest.mark.parametrize("args", CHANGES[1:])
def test_a_keystore_write_that_fails_after_the_record_takes_the_record_back(ws, args):
    """Room for the record but not for keystore.json: the operation fails and its record is cut off again."""
    keystore, log = (ws.home / "keystore.json").read_bytes(), ws.log.read_bytes()
    assert len(keystore) > len(log) + 500  # the limit below lets the record through and stops the keystore
    result = ws(*args, max_file_size=len(log) + 500)
    assert result.returncode == 5 and f"cannot write {ws.home / 'keystore.json'}" in _one_line(result)
    assert result.stdout == ""
    assert (ws.home / "keystore.json").read_bytes() == keystore and ws.log.read_bytes() == log
