"""Audit log: append-only JSON lines with time, user and host; bytes are refused outright."""

import pytest

from tagsmith.keystore.audit import AuditLog, read_audit


def test_records_append_with_who_and_when(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    log.record("create", key_set="p", slot=0, version=1, fingerprint="00ff")
    log.record("rotate", key_set="p", slot=0, version=2, fingerprint="11ee")
    records = read_audit(tmp_path / "audit.log")
    assert [r["op"] for r in records] == ["create", "rotate"]
    assert all(r["time"].endswith("Z") and r["user"] and r["host"] for r in records)
    assert oct((tmp_path / "audit.log").stat().st_mode & 0o777) == "0o600"


def test_key_bytes_and_unknown_operations_are_refused(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    with pytest.raises(TypeError):
        log.record("import", key=b"\x00" * 16)
    with pytest.raises(ValueError):
        log.record("dump-keys")
    assert read_audit(tmp_path / "audit.log") == []


def test_chain_reveals_a_deleted_or_edited_line(tmp_path):
    from tagsmith.keystore.audit import verify_chain

    path = tmp_path / "audit.log"
    log = AuditLog(path)
    for version in (1, 2, 3):
        log.record("rotate", key_set="p", slot=2, version=version)
    assert verify_chain(path) is None
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[2])
    assert verify_chain(path) == 1
    path.write_text(lines[0] + lines[1].replace('"version": 2', '"version": 9') + lines[2])
    assert verify_chain(path) == 2
