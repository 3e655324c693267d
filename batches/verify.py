"""Read and verify a manifest: signature, schema and internal consistency, in bounded memory.

The digest and signature are checked first (a changed byte is reported as such, not as the
schema error it may cause); then one pass over the records checks each against the schema, the
serial's check characters and its URL, and looks for duplicate serials and UIDs (kept as ints,
about 70 bytes per unit each) and for counts and times that disagree with the header.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tagsmith import NotFoundError, VerificationError
from tagsmith.limits import MANIFEST_LINE_BYTES, MIB, SIGNATURE_BYTES

from .manifest import (
    CSV_COLUMNS,
    SCHEMA_NAME,
    SIGNATURE_ALGORITHM,
    Verifier,
    load_schema,
    signature_entry,
    signature_path,
)
from .schemacheck import Check, SchemaViolation, compile_schema
from .serials import MODULUS

Records = Generator[dict[str, Any], None, None]  # streamed from the open file; close() releases it


@dataclass(frozen=True)
class VerifyReport:
    manifest_id: str
    batch_id: str
    units: int
    sha256: str
    format: str
    key_pinned: bool  # True when checked against a public key given by the caller
    header: dict[str, Any]
    public_key_pem: str = ""  # the key that signed it (from the .sig file, checked against the signature)


@lru_cache(maxsize=1)
def _checks() -> tuple[Check, Check]:
    schema = load_schema()
    return (compile_schema(schema["$defs"]["header"], schema), compile_schema(schema["$defs"]["unit"], schema))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_signature(path: Path, public_key_pem: str | None = None, *,
                    verifier: Verifier) -> tuple[dict[str, Any], str]:
    """Check the detached signature of ``path`` with ``verifier``; returns (signature document, sha256 hex)."""
    sig_file = signature_path(path)
    if not Path(path).is_file():
        raise NotFoundError(f"no manifest file {path}")
    try:
        with open(sig_file, "rb") as fh:
            raw = fh.read(SIGNATURE_BYTES + 1)  # bounded: a .sig is a few hundred bytes
        if len(raw) > SIGNATURE_BYTES:
            raise VerificationError(f"signature file {sig_file.name} is larger than {SIGNATURE_BYTES // MIB} MiB")
        document = json.loads(raw)
    except FileNotFoundError:
        raise VerificationError(f"no signature file {sig_file.name} beside the manifest") from None
    except ValueError as exc:
        raise VerificationError(f"signature file {sig_file.name} is damaged: {exc}") from None
    sha256 = file_sha256(path)
    sig = signature_entry(document, sha256) or document  # no entry: report the mismatch
    try:
        signature = base64.b64decode(sig["signature"], validate=True)
        embedded = sig["public_key"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise VerificationError(f"signature file {sig_file.name} is damaged: {exc}") from None
    if sig.get("algorithm") != SIGNATURE_ALGORITHM or sig.get("signed") != "sha256-digest":
        raise VerificationError(f"signature file {sig_file.name}: unsupported algorithm {sig.get('algorithm')!r}")
    if sha256 != sig.get("sha256"):
        raise VerificationError(f"manifest {path.name} changed after it was signed (SHA-256 {sha256[:16]}...)")
    key = verifier.public_key(embedded)
    if public_key_pem is not None and verifier.public_key(public_key_pem) != key:
        raise VerificationError(f"manifest {path.name} was signed by a different key than the one given")
    if not verifier.is_valid(key, bytes.fromhex(sha256), signature):
        raise VerificationError(f"manifest {path.name}: the {SIGNATURE_ALGORITHM} signature is not valid")
    return sig, sha256


def read_header(path: Path) -> tuple[str, dict[str, Any]]:
    """(format, header) of a manifest without reading its records."""
    fmt, header, records = read_manifest(path)
    records.close()
    return fmt, header


def read_manifest(path: Path) -> tuple[str, dict[str, Any], Records]:
    """(format, header, records) of a manifest; records stream from the open file."""
    with open(path, "rb") as raw:  # text mode would decode ahead of the first line
        first_bytes = raw.readline(MANIFEST_LINE_BYTES + 1)  # bounded: a header is under 2 KiB
    if len(first_bytes) > MANIFEST_LINE_BYTES:
        raise VerificationError(f"{path.name}: the first line is longer than {MANIFEST_LINE_BYTES // 1024} KiB, "
                                "not a manifest header")
    try:
        first = first_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError(f"{path.name}: not UTF-8 text") from None
    try:
        if first.startswith("{"):
            fmt, header = "jsonl", json.loads(first)
        elif first.startswith("# {"):
            fmt, header = "csv", json.loads(first[2:])
        else:
            raise VerificationError(f"{path.name} is not a tagsmith manifest (unknown first line)")
    except json.JSONDecodeError as exc:
        raise VerificationError(f"{path.name}: the header is not valid JSON: {exc}") from None
    return fmt, header, (_jsonl_records if fmt == "jsonl" else _csv_records)(path)


def _jsonl_records(path: Path) -> Records:
    with open(path, encoding="utf-8", newline="") as f:
        f.readline()
        for number, line in enumerate(f, start=2):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise VerificationError(f"{path.name} line {number}: not valid JSON: {exc.msg}") from None


def _csv_records(path: Path) -> Records:
    with open(path, encoding="utf-8", newline="") as f:
        f.readline()
        reader = csv.reader(f)
        if tuple(next(reader, ())) != CSV_COLUMNS:
            raise VerificationError(f"{path.name} line 2: expected the columns {','.join(CSV_COLUMNS)}")
        for number, row in enumerate(reader, start=3):
            if len(row) != len(CSV_COLUMNS):
                raise VerificationError(f"{path.name} line {number}: {len(row)} columns, expected {len(CSV_COLUMNS)}")
            try:
                record: dict[str, Any] = dict(zip(CSV_COLUMNS, row, strict=True))
                record["key_versions"] = {k: int(v) for k, _, v in
                                          (p.partition("=") for p in row[3].split(";") if p)}
                for name in ("encode_counter", "verified_counter"):
                    record[name] = int(record[name]) if record[name] else None
            except ValueError:
                raise VerificationError(f"{path.name} line {number}: a number field is not a number") from None
            record["station"] = record["station"] or None
            record["qa"] = record["qa"] or None
            yield record


def verify_manifest(path: str | Path, public_key_pem: str | None = None, *, verifier: Verifier) -> VerifyReport:
    """Check signature (with ``verifier``), schema and consistency; raise VerificationError with the first reason found."""
    path = Path(path)
    sig, sha256 = check_signature(path, public_key_pem, verifier=verifier)
    fmt, header, records = read_manifest(path)
    check_header, check_unit = _checks()
    if header.get("schema") != SCHEMA_NAME:
        raise VerificationError(f"{path.name}: not a {SCHEMA_NAME} (schema {header.get('schema')!r})")
    try:
        check_header(header, "header")
    except SchemaViolation as exc:
        raise VerificationError(f"{path.name}: {exc}") from None
    if sig.get("manifest_id") != header["manifest_id"]:
        raise VerificationError(f"{path.name}: the signature belongs to manifest {sig.get('manifest_id')}")
    records.close()
    units = _jsonl_units(path, check_unit) if fmt == "jsonl" else _dict_units(path, _csv_records(path), check_unit)
    try:
        count = _check_units(path, header, units)
    except UnicodeDecodeError:
        raise VerificationError(f"{path.name}: not UTF-8 text") from None
    return VerifyReport(header["manifest_id"], header["batch"]["id"], count, sha256, fmt,
                        public_key_pem is not None, header, sig["public_key"])


_BYTE = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_STR = r'"[^"\\\x00-\x1f\x7f-\x9f]*"'  # as the schema's station pattern: no control characters
_COUNTER = r"(null|0|[1-9][0-9]{0,7})"
# The exact shape tagsmith writes; a line matching it satisfies the schema's unit definition, so
# the common case skips json.loads. Anything else (other writers, whitespace) takes the full path.
_CANONICAL = re.compile(
    r'\{"serial":"([0-9A-Z]{3,20})","uid":"([0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})",'
    r'"url":"(https://[^"\\\x00-\x1f]*)",'
    rf'"key_versions":\{{(?:"[0-4]":{_BYTE}(?:,"[0-4]":{_BYTE})*)?\}},'
    r'"encoded_at":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z)",'
    rf'"station":(?:null|{_STR}),"encode_counter":{_COUNTER},"verified_counter":{_COUNTER},'
    r'"qa":(null|"pass"|"fail")\}\n?')
Fields = tuple[str, str, str, str, bool, str | None]  # serial, uid, url, encoded_at, verified, qa


def _jsonl_units(path: Path, check: Check) -> Iterator[Fields]:
    match = _CANONICAL.fullmatch
    with open(path, encoding="utf-8", newline="") as f:
        f.readline()
        for number, line in enumerate(f, start=2):
            m = match(line)
            if m is not None:
                serial, uid, url, at, enc, ver, qa = m.groups()
                if len(enc) < 8 and len(ver) < 8:
                    yield serial, uid, url, at, ver != "null", None if qa == "null" else qa[1:-1]
                    continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise VerificationError(f"{path.name} line {number}: not valid JSON: {exc.msg}") from None
            yield _fields(path, number - 1, record, check)


def _dict_units(path: Path, records: Iterator[dict[str, Any]], check: Check) -> Iterator[Fields]:
    for count, record in enumerate(records, start=1):
        yield _fields(path, count, record, check)


def _fields(path: Path, count: int, record: Any, check: Check) -> Fields:
    try:
        check(record, "unit")
    except SchemaViolation as exc:
        raise VerificationError(f"{path.name} record {count}: {exc}") from None
    return (record["serial"], record["uid"], record["url"], record["encoded_at"],
            record["verified_counter"] is not None, record["qa"])


def _check_units(path: Path, header: dict[str, Any], units: Iterator[Fields]) -> int:
    prefix = header["url"]["unit_url"].removesuffix("{serial}")
    serials: set[int] = set()
    uids: set[int] = set()
    verified = qa_pass = qa_fail = count = 0
    first = last = None
    for count, (serial, uid, url, at, was_verified, qa) in enumerate(units, start=1):
        value = int(serial, 36)
        if value % MODULUS != 1:
            raise VerificationError(f"{path.name} record {count}: serial {serial} fails its check characters")
        if url != prefix + serial:
            raise VerificationError(f"{path.name} record {count}: URL {url} does not match serial {serial}")
        if value in serials:
            raise VerificationError(f"{path.name} record {count}: duplicate serial {serial}")
        serials.add(value)
        uid_value = int(uid, 16)
        if uid_value in uids:
            raise VerificationError(f"{path.name} record {count}: duplicate UID {uid}")
        uids.add(uid_value)
        verified += was_verified
        if qa is not None:
            qa_pass += qa == "pass"
            qa_fail += qa == "fail"
        if first is None or at < first:
            first = at
        if last is None or at > last:
            last = at
    counts = header["counts"]
    found = {"units": count, "verified": verified, "qa_pass": qa_pass, "qa_fail": qa_fail}
    for name, value in found.items():
        if counts[name] != value:
            raise VerificationError(f"{path.name}: header counts {counts[name]} {name}, the records hold {value}")
    span = header["time_range"]
    if (span["first_encoded_at"], span["last_encoded_at"]) != (first, last):
        raise VerificationError(f"{path.name}: the header's time range does not match the records")
    if count + counts["voided"] > header["batch"]["quantity"]:
        raise VerificationError(f"{path.name}: more units than the batch quantity {header['batch']['quantity']}")
    return count
