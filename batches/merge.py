"""Merge manifests of one batch written by several stations into one signed manifest.

Every input must verify. Two passes over the inputs: the first indexes serials and UIDs (as ints)
and collects conflicts (a serial with two UIDs, a UID with two serials, one unit with two
different records); any conflict refuses the merge with a report. The second pass writes every
distinct unit once: identical repeats collapse, nothing else is dropped.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tagsmith import ConfigError, NotFoundError, VerificationError, __version__

from .manifest import CSV_COLUMNS, SCHEMA_NAME, SCHEMA_VERSION, Signer, Verifier, write_signed
from .records import ManifestRecord
from .store import Store, utc_now
from .verify import VerifyReport, read_manifest, verify_manifest

_SAME = ("product", "batch", "url", "sdm", "keys", "schema_version")
MAX_REPORTED = 50


class ConflictKind(StrEnum):
    """How two manifests of one batch disagree about a unit."""

    SERIAL_TWO_UIDS = "serial-two-uids"
    UID_TWO_SERIALS = "uid-two-serials"
    UNIT_DIFFERS = "unit-differs"


@dataclass(frozen=True)
class Conflict:
    kind: ConflictKind
    serial: str
    uid: str
    sources: tuple[str, str]

    def __str__(self) -> str:
        text = {ConflictKind.SERIAL_TWO_UIDS: f"serial {self.serial} has two UIDs",
                ConflictKind.UID_TWO_SERIALS: f"UID {self.uid} has two serials",
                ConflictKind.UNIT_DIFFERS: f"unit {self.serial} / {self.uid} has two different records"}[self.kind]
        return f"{text} ({self.sources[0]} vs {self.sources[1]})"


class MergeConflictError(VerificationError):
    """The manifests disagree; ``conflicts`` lists the first ones found, ``total`` counts all."""

    def __init__(self, conflicts: list[Conflict], total: int) -> None:
        self.conflicts, self.total = conflicts, total
        super().__init__(f"{total} conflict(s) between the manifests; first: {conflicts[0]}")


@dataclass(frozen=True)
class MergeResult:
    manifest_id: str
    path: Path
    sha256: str
    units: int
    duplicates: int
    sources: tuple[VerifyReport, ...]


def merge_manifests(paths: Sequence[str | Path], out: str | Path, *, signer: Signer, public_key_pem: str,
                    verifier: Verifier, trusted_keys: Sequence[str] = (), fmt: str | None = None,
                    store: Store | None = None) -> MergeResult:
    """Merge manifests of one batch, each verified with ``verifier``, into ``out``; refuses conflicts, loses no unit.

    Every input must be signed by the line's own key (``public_key_pem``, the key the result is signed
    with) or one of ``trusted_keys``: re-signing an input signed by anyone else would vouch for it.
    """
    if len(paths) < 2:
        raise ConfigError("merge needs at least two manifests")
    files = [Path(p) for p in paths]
    trusted = [verifier.public_key(pem) for pem in (public_key_pem, *trusted_keys)]
    reports = tuple(_verify_trusted(p, trusted, verifier) for p in files)
    first = reports[0].header
    for report in reports[1:]:
        for field in _SAME:
            if report.header[field] != first[field]:
                raise VerificationError(f"{files[reports.index(report)].name} differs from {files[0].name} "
                                        f"in its {field}: not the same batch")
    stats, duplicates = _index(files)
    header = {
        "schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, "manifest_id": uuid.uuid4().hex, "kind": "merge",
        "created_at": utc_now(), "tool": {"name": "tagsmith", "version": __version__},
        **{field: first[field] for field in _SAME if field != "schema_version"},
        "counts": {**stats["counts"], "voided": sum(r.header["counts"]["voided"] for r in reports)},
        "time_range": stats["time_range"],
        "sources": [{"manifest_id": r.manifest_id, "sha256": r.sha256, "units": r.units} for r in reports],
    }
    out = Path(out)
    sha256, written = write_signed(out, header, _distinct(files), fmt or reports[0].format, signer, public_key_pem)
    if store is not None and _known_batch(store, first["batch"]["id"]):
        store.record_manifest(ManifestRecord(header["manifest_id"], first["batch"]["id"], "merge",
                                             str(out.absolute()), fmt or reports[0].format, sha256, written,
                                             header["created_at"]))
    return MergeResult(header["manifest_id"], out, sha256, written, duplicates, reports)


def _verify_trusted(path: Path, trusted: list[bytes], verifier: Verifier) -> VerifyReport:
    """Verify ``path`` and require that its signer is one of the ``trusted`` public keys."""
    report = verify_manifest(path, verifier=verifier)
    if verifier.public_key(report.public_key_pem) not in trusted:
        raise VerificationError(f"{path.name} is signed by a key that is neither the line's manifest key nor one "
                                "given with --public-key: not merged")
    return report


def _fingerprint(record: dict[str, Any]) -> bytes:
    return hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=8).digest()


def _index(files: list[Path]) -> tuple[dict[str, Any], int]:
    """First pass: conflicts, counts and time range of the distinct units."""
    by_serial: dict[int, tuple[int, bytes, int]] = {}
    by_uid: dict[int, int] = {}
    conflicts: list[Conflict] = []
    total = duplicates = verified = qa_pass = qa_fail = 0
    first = last = None
    for index, path in enumerate(files):
        for record in read_manifest(path)[2]:
            serial, uid = int(record["serial"], 36), int(record["uid"], 16)
            seen = by_serial.get(serial)
            found: ConflictKind | None = None
            if seen is not None:
                if seen[0] != uid:
                    found = ConflictKind.SERIAL_TWO_UIDS
                elif seen[1] != _fingerprint(record):
                    found = ConflictKind.UNIT_DIFFERS
                else:
                    duplicates += 1
                    continue
                where = (files[seen[2]].name, path.name)
            elif by_uid.get(uid, serial) != serial:
                found, where = ConflictKind.UID_TWO_SERIALS, (files[by_serial[by_uid[uid]][2]].name, path.name)
            if found:
                total += 1
                if len(conflicts) < MAX_REPORTED:
                    conflicts.append(Conflict(found, record["serial"], record["uid"], where))
                continue
            by_serial[serial] = (uid, _fingerprint(record), index)
            by_uid[uid] = serial
            verified += record["verified_counter"] is not None
            qa_pass += record["qa"] == "pass"
            qa_fail += record["qa"] == "fail"
            at = record["encoded_at"]
            first = at if first is None or at < first else first
            last = at if last is None or at > last else last
    if conflicts:
        raise MergeConflictError(conflicts, total)
    counts = {"units": len(by_serial), "verified": verified, "qa_pass": qa_pass, "qa_fail": qa_fail}
    return {"counts": counts, "time_range": {"first_encoded_at": first, "last_encoded_at": last}}, duplicates


def _distinct(files: list[Path]) -> Iterator[tuple[Any, ...]]:
    """Second pass: every unit once, in input order."""
    emitted: set[int] = set()
    for path in files:
        for record in read_manifest(path)[2]:
            serial = int(record["serial"], 36)
            if serial not in emitted:
                emitted.add(serial)
                yield tuple(record[c] for c in CSV_COLUMNS)


def _known_batch(store: Store, batch_id: str) -> bool:
    try:
        store.batch(batch_id)
    except NotFoundError:
        return False
    return True
