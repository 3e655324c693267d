"""Signed manifests of a batch for the cloud resolver: export, read and verify.

A manifest is a header and one record per encoded unit (never a key), written as JSON Lines
or CSV (see docs/manifest.md and manifest.schema.json). Export streams the database cursor to a
temporary file while hashing it, fsyncs, signs the SHA-256 digest with the line's manifest key,
renames both files into place and only then records the manifest in the database: a crash at any
moment leaves nothing recorded. This module holds no signature algorithm: the caller passes a
``signer`` (the keystore's) to write and a :class:`Verifier` (keystore/signing.py's) to check.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from tagsmith import ConfigError, StateError, __version__
from tagsmith.atomicfile import fsync_dir, synced_file

from .gs1 import UnitUrls
from .records import ManifestRecord
from .store import Store, utc_now

SCHEMA_NAME = "tagsmith-manifest"
SCHEMA_VERSION = 1
FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ("serial", "uid", "url", "key_versions", "encoded_at", "station", "encode_counter",
               "verified_counter", "qa")
SIGNATURE_ALGORITHM = "Ed25519"  # the .sig format's one algorithm (docs/manifest.md), implemented by the keystore
Signer = Callable[[bytes], bytes]
_CHUNK = 2000  # records per write: bounded memory, few system calls


class Verifier(Protocol):
    """How a manifest's signature is checked, handed in by the caller (``keystore.signing.MANIFEST_VERIFIER``)."""

    def public_key(self, pem: str) -> bytes:
        """The key's canonical bytes, by which keys are compared; VerificationError when ``pem`` is not one."""
        ...

    def is_valid(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is the holder of ``public_key``'s signature of ``data``."""
        ...


@dataclass(frozen=True)
class ExportResult:
    manifest_id: str
    path: Path
    signature_path: Path
    sha256: str
    units: int
    format: str


def signature_path(path: str | Path) -> Path:
    """Where a manifest's detached signature lives: ``FILE.sig`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sig")


def load_schema() -> dict[str, Any]:
    return json.loads(resources.files("tagsmith.batches").joinpath("manifest.schema.json").read_text())


# ---------------------------------------------------------------- writing
def export_manifest(store: Store, batch_id: str, out: str | Path, *, signer: Signer, public_key_pem: str,
                    fmt: str = "jsonl", sdm_layout: Mapping[str, Any] | None = None,
                    diversification: str, qa: Mapping[str, Any] | None = None,
                    system_id: bytes | None = None) -> ExportResult:
    """Export the batch's encoded units as a signed manifest and record it in the database.

    ``qa`` is the release's QA record for the header (provision/qa.py release_check / release_override).
    ``system_id`` is the one the key set diversified the chips with (default: the product file's).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"manifest format {fmt!r} must be one of {', '.join(FORMATS)}")
    out = Path(out)
    with store.snapshot():  # header counts and records come from one consistent view
        batch = store.batch(batch_id)
        product = store.batch_product(batch_id)
        summary = store.export_summary(batch_id)
        urls = UnitUrls(product.resolver, product.gtin, batch.lot if product.lot_in_url else None)
        header: dict[str, Any] = {
            "schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, "manifest_id": uuid.uuid4().hex,
            "kind": "export", "created_at": utc_now(), "tool": {"name": "tagsmith", "version": __version__},
            "product": {"id": product.id, "name": product.name, "model": product.model, "gtin": product.gtin,
                        "sha256": product.sha256, "secure_messaging": product.secure_messaging},
            "batch": {"id": batch.id, "lot": batch.lot, "line": batch.line, "quantity": batch.quantity},
            "url": {"resolver": product.resolver, "template": product.url_template,
                    "lot_in_url": product.lot_in_url, "unit_url": urls.prefix + "{serial}"},
            "sdm": dict(sdm_layout) if sdm_layout is not None else None,
            "keys": {"key_set": product.keys.key_set,
                     "system_id": (product.keys.system_id if system_id is None else system_id).hex().upper(),
                     "diversification": diversification,
                     "slots": {str(s.slot): {"role": s.role, "version": s.version} for s in product.keys.slots}},
            "counts": {k: summary[k] for k in ("units", "verified", "qa_pass", "qa_fail", "voided")},
            "time_range": {"first_encoded_at": summary["first_encoded_at"],
                           "last_encoded_at": summary["last_encoded_at"]},
            "sources": [],
            **({"qa": dict(qa)} if qa is not None else {}),
        }
        records = _db_records(store.export_rows(batch_id), urls)
        sha256, written = write_signed(out, header, records, fmt, signer, public_key_pem)
    store.record_manifest(ManifestRecord(header["manifest_id"], batch_id, "export", str(out.absolute()), fmt,
                                         sha256, written, header["created_at"]))
    return ExportResult(header["manifest_id"], out, signature_path(out), sha256, written, fmt)


def _db_records(rows: Iterable[tuple[Any, ...]], urls: UnitUrls) -> Iterator[tuple[Any, ...]]:
    """Database rows -> record tuples in CSV_COLUMNS order (key versions still as JSON text)."""
    for serial, uid, key_versions, encoded_at, station, encode_counter, verified_counter, qa in rows:
        yield (serial, uid.hex().upper(), urls(serial), key_versions or "{}", encoded_at, station,
               encode_counter, verified_counter, qa)


def _q(text: str | None) -> str:
    """A JSON string (or null); plain quoting when nothing needs escaping, which is the usual case."""
    if text is None:
        return "null"
    if '"' in text or "\\" in text or not text.isprintable():
        return json.dumps(text)
    return f'"{text}"'


def _jsonl(record: tuple[Any, ...]) -> str:
    serial, uid, url, kv, encoded_at, station, enc, ver, qa = record
    kv_text = kv if isinstance(kv, str) else json.dumps(kv, separators=(",", ":"))
    return (f'{{"serial":{_q(serial)},"uid":{_q(uid)},"url":{_q(url)},"key_versions":{kv_text},'
            f'"encoded_at":{_q(encoded_at)},"station":{_q(station)},'
            f'"encode_counter":{"null" if enc is None else int(enc)},'
            f'"verified_counter":{"null" if ver is None else int(ver)},"qa":{_q(qa)}}}\n')


def _csv_rows(records: Iterable[tuple[Any, ...]]) -> Iterator[list[str]]:
    for serial, uid, url, kv, encoded_at, station, enc, ver, qa in records:
        versions = json.loads(kv) if isinstance(kv, str) else kv
        yield [serial, uid, url, ";".join(f"{k}={v}" for k, v in versions.items()), encoded_at, station or "",
               "" if enc is None else str(enc), "" if ver is None else str(ver), qa or ""]


def _chunks(header: dict[str, Any], records: Iterable[tuple[Any, ...]], fmt: str) -> Iterator[tuple[str, int]]:
    """The manifest as text chunks with the number of records in each."""
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=True)
    if fmt == "jsonl":
        yield head + "\n", 0
        batch: list[str] = []
        for record in records:
            batch.append(_jsonl(record))
            if len(batch) == _CHUNK:
                yield "".join(batch), len(batch)
                batch = []
        yield "".join(batch), len(batch)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write(f"# {head}\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for count, row in enumerate(_csv_rows(records), start=1):
        writer.writerow(row)
        if count % _CHUNK == 0:
            yield buffer.getvalue(), _CHUNK
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue(), count % _CHUNK


def write_signed(out: Path, header: dict[str, Any], records: Iterable[tuple[Any, ...]], fmt: str,
                 signer: Signer, public_key_pem: str) -> tuple[str, int]:
    """Write manifest and signature crash-safely (temp files, fsync, renames); returns (sha256, records).

    The renames are ordered so that a verifier finds a valid pair at every instant: when a manifest
    is replaced, a ``.sig`` naming both the new digest and (as ``previous``) the old one goes first,
    then the manifest, then the final ``.sig``. A new file goes manifest first: until its ``.sig``
    lands it is merely unsigned, never a good manifest that fails.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    sig_tmp = out.with_name(f".{out.name}.sig.{os.getpid()}.tmp")
    both_tmp = out.with_name(f".{out.name}.sig-both.{os.getpid()}.tmp")
    digest, written = hashlib.sha256(), 0
    try:
        with synced_file(tmp) as f:
            for text, n in _chunks(header, records, fmt):
                data = text.encode("utf-8")
                digest.update(data)
                f.write(data)
                written += n
        if written != header["counts"]["units"]:
            raise StateError(f"wrote {written} records but the header counts {header['counts']['units']}")
        signature = signer(digest.digest())
        sig = {"manifest_id": header["manifest_id"], "algorithm": SIGNATURE_ALGORITHM, "signed": "sha256-digest",
               "sha256": digest.hexdigest(), "public_key": public_key_pem,
               "signature": base64.b64encode(signature).decode()}
        _write_synced(sig_tmp, sig)
        previous = _current_entry(out)
        if previous is not None:  # replacing a manifest: a .sig valid for the old file and the new one first
            _write_synced(both_tmp, {**sig, "previous": previous})
            os.replace(both_tmp, signature_path(out))
        os.replace(tmp, out)
        os.replace(sig_tmp, signature_path(out))
        fsync_dir(out.parent)
    finally:
        for leftover in (tmp, sig_tmp, both_tmp):
            leftover.unlink(missing_ok=True)
    return digest.hexdigest(), written


def _write_synced(path: Path, sig: dict[str, Any]) -> None:
    with synced_file(path) as f:  # private: manifests name every chip of a batch
        f.write((json.dumps(sig, indent=2) + "\n").encode())


def _current_entry(out: Path) -> dict[str, Any] | None:
    """The signature entry of the manifest now at ``out`` (for the replacement's ``previous``), if any."""
    if not out.is_file():
        return None
    try:
        document = json.loads(signature_path(out).read_text())
    except (OSError, ValueError):
        return None  # no valid signature to keep: nothing verifies at ``out`` now either
    with open(out, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    entry = signature_entry(document, sha256)
    if entry.get("sha256") != sha256:
        return None
    return {k: v for k, v in entry.items() if k != "previous"}


def signature_entry(document: Any, sha256: str) -> dict[str, Any]:
    """The entry of a ``.sig`` document for the manifest with this digest ({} when it has none).

    While a manifest is being replaced its ``.sig`` also carries the old manifest's entry as
    ``previous`` (docs/manifest.md), so the old file verifies until the new one is renamed over it.
    """
    if not isinstance(document, dict):
        return {}
    previous = document.get("previous")
    if document.get("sha256") == sha256:
        return document
    if isinstance(previous, dict) and previous.get("sha256") == sha256:
        return previous
    return document if "previous" not in document else {}

