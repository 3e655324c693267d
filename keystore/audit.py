"""Append-only audit log of key operations: JSON lines with UTC time, OS user and host.

Records references, versions and fingerprints only; a record carrying bytes is refused, so a
key can never slip into the log by accident. Each record carries ``prev``, the SHA-256 of the
line before it, so a deleted or edited line shows up in :func:`verify_chain` (tamper-evident,
not tamper-proof: whoever can rewrite the whole file can rewrite the chain too).
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from .storage import locked

GENESIS = "0" * 64
OPERATIONS = frozenset({"init", "create", "import", "rotate", "export", "derive-reveal", "unlock-failed"})


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid())


class AuditLog:
    """Appends one JSON line per key operation to the workspace's audit.log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, op: str, **fields: Any) -> dict:
        """Append a record for ``op``; ``fields`` are key_set, slot, version, fingerprint and the like."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown audit operation {op!r}")
        for name, value in fields.items():
            if not isinstance(value, (str, int, bool, type(None))):
                raise TypeError(f"audit field {name} must be text or a number, not {type(value).__name__}")
        entry = {"time": utc_now(), "op": op, "user": _who(), "host": socket.gethostname(), **fields}
        with locked(self.path):  # the lock keeps ``prev`` right when two processes append
            entry["prev"] = _last_line_hash(self.path)
            line = (json.dumps(entry) + "\n").encode()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry


def read_audit(path: Path) -> list[dict]:
    """All records of an audit log, oldest first (empty when there is none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def verify_chain(path: Path) -> int | None:
    """The 0-based index of the first record whose ``prev`` does not match, or None when intact."""
    prev = GENESIS
    lines = path.read_bytes().splitlines() if path.exists() else []
    for index, line in enumerate(lines):
        if json.loads(line).get("prev") != prev:
            return index
        prev = hashlib.sha256(line).hexdigest()
    return None


def _last_line_hash(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return GENESIS
    return hashlib.sha256(lines[-1]).hexdigest() if lines else GENESIS
