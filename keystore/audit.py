"""Append-only audit log of key operations: JSON lines with UTC time, OS user and host.

Records references, versions and fingerprints only; a record carrying bytes is refused, so a
key can never slip into the log by accident. Each record carries ``prev``, the SHA-256 of the
line before it, so an edited or deleted line inside the log breaks the chain.

The chain alone cannot show a cut at the end (delete the last lines, edit the last one, empty or
delete the file). So the keystore holds the log's *anchor*: how many records it has and the
SHA-256 of the last one, written in the same atomic write as the key change (the file backend's
authenticated header; a data object on a PKCS#11 token). A key operation appends its records
first (:meth:`AuditLog.append`), then writes the keystore with the new anchor, then takes effect;
if the records cannot be written the operation is refused, and a partly written line is cut off.
:func:`check_log` compares a log with its anchor. Records after the anchor (a failed unlock: no
key to write the keystore with; an operation interrupted between its record and its keystore
write) are reported as not anchored: they chain on, but nothing vouches for them.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith import KeystoreError, VerificationError
from tagsmith.atomicfile import append_synced

from .storage import locked

GENESIS = "0" * 64
OPERATIONS = frozenset({"init", "create", "import", "rotate", "export", "derive-reveal", "unlock-failed",
                        "station-key", "bundle-export", "bundle-import"})


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid())


@dataclass(frozen=True)
class LogCheck:
    """What :func:`check_log` found: the records, and the one-line problem (None when intact)."""

    records: list[dict]
    problem: str | None = None
    first_broken: int | None = None  # 0-based index of the first record that cannot be trusted
    anchored: int = 0
    unanchored: int = 0


@dataclass(frozen=True)
class Appended:
    """Where :meth:`AuditLog.append` wrote (to take it back) and the log's new anchor."""

    offset: int
    size: int
    anchor: dict


def anchor_of(records: int, last_line: bytes | None) -> dict:
    return {"records": records, "head": hashlib.sha256(last_line).hexdigest() if last_line is not None else GENESIS}


class AuditLog:
    """Appends JSON lines, one per key operation, to the workspace's audit.log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, op: str, **fields: Any) -> dict:
        """Append one record that no keystore write anchors (a failed unlock: there is no key to write with)."""
        with locked(self.path):
            lines, tail = _split(_read(self.path) or b"")
            if tail:
                raise KeystoreError(f"audit log {self.path} ends with a torn record; check it with: tagsmith keys audit")
            entry = _entry(op, fields, lines[-1] if lines else None)
            self._write(sum(len(line) + 1 for line in lines), [entry])
        return entry

    def append(self, entries: Iterable[tuple[str, dict]], anchor: dict | None) -> Appended:
        """Append the records of one key operation, after checking the log still matches ``anchor``.

        A log that does not (cut, edited, deleted) is refused: appending would bless the damage in
        the next anchor. Raises KeystoreError when the records cannot be written, and then nothing
        of them stays in the log.
        """
        with locked(self.path):
            raw = _read(self.path)
            found = check_bytes(raw, anchor)
            if found.problem is not None:
                raise VerificationError(f"audit log {self.path}: {found.problem}; no key operation is done until "
                                        "the log is restored (see: tagsmith keys audit)")
            lines = _split(raw or b"")[0]
            new: list[dict] = []
            for op, fields in entries:
                new.append(_entry(op, fields, _line(new[-1]) if new else (lines[-1] if lines else None)))
            offset = len(raw or b"")
            size = self._write(offset, new)
        return Appended(offset, size, anchor_of(len(lines) + len(new), _line(new[-1])))

    def retract(self, appended: Appended) -> None:
        """Take back records whose operation failed after all (only while nothing was appended after them)."""
        with locked(self.path):
            try:
                if self.path.stat().st_size == appended.offset + appended.size:
                    os.truncate(self.path, appended.offset)
            except OSError:
                pass  # the records stay, after the anchor: reported as not anchored

    def _write(self, offset: int, entries: list[dict]) -> int:
        """Write the records at the end of the log as one write; on any failure cut the log back to ``offset``."""
        data = b"".join(_line(e) + b"\n" for e in entries)
        try:
            append_synced(self.path, data, undo_to=offset)
        except OSError as exc:
            raise KeystoreError(f"cannot write the audit log {self.path}: {exc.strerror or exc}; "
                                "nothing was done") from None
        return len(data)


def read_audit(path: Path) -> list[dict]:
    """All complete records of an audit log, oldest first (empty when there is none)."""
    return check_log(path, None).records


def verify_chain(path: Path) -> int | None:
    """The 0-based index of the first record whose ``prev`` does not match, or None when intact."""
    return check_log(path, None).first_broken


def check_log(path: Path, anchor: dict | None) -> LogCheck:
    """Check the chain of the log at ``path`` and its end against ``anchor`` (None: never anchored)."""
    return check_bytes(_read(path), anchor)


def check_bytes(raw: bytes | None, anchor: dict | None) -> LogCheck:
    """Check a log's bytes (None: no file); never raises on a damaged log, every damage is one ``problem`` line."""
    anchored = int(anchor["records"]) if anchor else 0
    if raw is None:
        problem = f"log deleted ({anchored} records anchored in the keystore are missing)" if anchored else None
        return LogCheck([], problem, 0 if problem else None, anchored)
    lines, tail = _split(raw)
    records: list[dict] = []
    prev = GENESIS
    for index, line in enumerate(lines):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError
        except ValueError:
            return LogCheck(records, f"record #{index + 1} edited (not a JSON record)", index, anchored)
        if record.get("prev") != prev:
            what = f"record #{index} edited, or records deleted after it" if index else "records deleted before #1"
            return LogCheck(records, what, index, anchored)
        records.append(record)
        prev = hashlib.sha256(line).hexdigest()
    if len(lines) < anchored:
        what = "log emptied: " if not raw else ""
        torn = f" (record #{len(lines) + 1} is torn)" if tail else ""
        missing = anchored - len(lines)
        return LogCheck(records, f"{what}{missing} record{'s' if missing > 1 else ''} missing after #{len(lines)}{torn}",
                        len(lines), anchored)
    if anchored and hashlib.sha256(lines[anchored - 1]).hexdigest() != anchor["head"]:  # type: ignore[index]
        return LogCheck(records, f"record #{anchored} edited", anchored - 1, anchored)
    if tail:
        return LogCheck(records, f"record #{len(lines) + 1} is torn (the log ends mid-line)", len(lines), anchored,
                        len(lines) - anchored)
    return LogCheck(records, None, None, anchored, len(lines) - anchored)


def _entry(op: str, fields: dict, prev_line: bytes | None) -> dict:
    if op not in OPERATIONS:
        raise ValueError(f"unknown audit operation {op!r}")
    for name, value in fields.items():
        if not isinstance(value, (str, int, bool, type(None))):
            raise TypeError(f"audit field {name} must be text or a number, not {type(value).__name__}")
    prev = hashlib.sha256(prev_line).hexdigest() if prev_line is not None else GENESIS
    return {"time": utc_now(), "op": op, "user": _who(), "host": socket.gethostname(), **fields, "prev": prev}


def _line(entry: dict) -> bytes:
    return json.dumps(entry).encode()


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines, and what follows the last newline (a torn record; empty when none)."""
    *lines, tail = raw.split(b"\n")
    return lines, tail


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeystoreError(f"cannot read the audit log {path}: {exc.strerror or exc}") from None
