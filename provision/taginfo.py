"""Identify a tag without touching its keys: what ``tagsmith tag info`` reports.

Everything here is readable without authentication (GetVersion, Read_Sig, GetKeyVersion,
GetFileSettings, an ISO NDEF read as a phone does it). Nothing ever authenticates with a guessed
key: failed attempts slow a real chip down and count against it. The verdict combines the chip's
answers with the batch database, when there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tagsmith import ChipError
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.files import FileSettings
from tagsmith.encoders.ntag424.originality import verify_originality
from tagsmith.encoders.ntag424.session import NDEF_FILE_ID, Ntag424Session

FRESH, TAGSMITH, FOREIGN, UNKNOWN = "factory-fresh", "personalised by tagsmith", "foreign", "unknown"
FILES = {1: "CC", 2: "NDEF", 3: "proprietary"}
KEYS = range(5)

#: What a database lookup returns for a UID: batch, serial, state, product (None: not ours).
UnitLookup = Callable[[bytes], "dict[str, Any] | None"]


@dataclass
class TagReport:
    """What one tag says about itself, and the verdict drawn from it."""

    uid: str
    product: str | None = None
    storage: str | None = None
    ntag424: bool = False
    originality: str | None = None  # nxp | simulator | invalid | None when unreadable
    key_versions: dict[int, int] = field(default_factory=dict)
    ndef_url: str | None = None
    file_settings: dict[int, dict[str, Any] | str] = field(default_factory=dict)
    verdict: str = UNKNOWN
    reason: str = ""
    unit: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _storage(code: int) -> str:
    """GetVersion storage byte: bits 7..1 give 2^n, bit 0 set means "between 2^n and 2^(n+1)"."""
    size = 1 << (code >> 1)
    return f"{size} bytes" if not code & 1 else f"{size}-{size * 2} bytes"


def _settings(settings: FileSettings) -> dict[str, Any]:
    def right(key: int) -> str:
        return {0xE: "free", 0xF: "never"}.get(key, f"key {key}")

    access = settings.access
    return {"size": settings.file_size, "comm_mode": settings.comm_mode.name.lower(), "sdm": settings.sdm is not None,
            "read": right(access.read), "write": right(access.write), "read_write": right(access.read_write),
            "change": right(access.change)}


def _read(report: TagReport, what: str, read: Callable[[], Any]) -> Any:
    """Run one unauthenticated read; a chip refusal is noted, a lost tag or reader still raises."""
    try:
        return read()
    except ChipError as exc:
        report.notes.append(f"{what}: {exc}")
        return None


def inspect_tag(connection: Connection, uid: bytes, *, allow_simulator_signature: bool = False,
                lookup: UnitLookup | None = None) -> TagReport:
    """Read what a tag shows without authentication and classify it.

    ``uid`` comes from the reader (anticollision); ``lookup`` finds a UID in the batch database
    (None when there is no database, and the verdict then says so).
    """
    session = Ntag424Session(connection)
    report = TagReport(uid=uid.hex().upper())
    version = _read(report, "GetVersion", lambda: session.get_version(require_ntag424=False))
    if version is not None:
        report.product, report.storage, report.ntag424 = version.product, _storage(version.hw_storage), version.is_ntag424
    if not report.ntag424:
        report.reason = "not an NTAG 424 DNA" if version is not None else "GetVersion failed"
        return report
    session.select_application()  # key versions and file settings live in the NDEF application
    signature = _read(report, "Read_Sig", session.read_sig)
    if signature is not None:
        result = verify_originality(uid, signature, allow_simulator=allow_simulator_signature)
        report.originality = result.signer.value if result.valid else "invalid"
    for key_no in KEYS:
        key_version = _read(report, f"GetKeyVersion {key_no}", lambda k=key_no: session.get_key_version(k))
        if key_version is not None:
            report.key_versions[key_no] = key_version
    for file_no in FILES:
        settings = _read(report, f"GetFileSettings {file_no:02X}", lambda f=file_no: session.get_file_settings(f))
        report.file_settings[file_no] = _settings(settings) if settings else "not readable"
    report.ndef_url = _read(report, "NDEF read as a phone", lambda: _ndef_url(session))
    report.verdict, report.reason = _verdict(report, uid, lookup)
    return report


def _ndef_url(session: Ntag424Session) -> str | None:
    """The URL a phone would open, or None when the NDEF file is empty (NLEN 0)."""
    session.select_file(NDEF_FILE_ID)
    if not any(session.iso_read_binary(0, 2)):
        return None
    return session.read_ndef_as_phone()


def _looks_factory_fresh(report: TagReport) -> bool:
    ndef = report.file_settings.get(2)
    return (len(report.key_versions) == len(KEYS) and not any(report.key_versions.values())
            and isinstance(ndef, dict) and not ndef["sdm"] and report.ndef_url is None)


#: What the database's unit state means for a chip that still holds its factory keys.
_FRESH_BUT_KNOWN = {
    "allocated": "interrupted before its first key change; a station of the batch resumes it",
    "encoding": "interrupted before its first key change; a station of the batch resumes it",
    "encoded": "recorded as personalised, yet the chip holds factory keys (reset outside tagsmith?)",
    "verified": "recorded as personalised, yet the chip holds factory keys (reset outside tagsmith?)",
    "voided": "voided (reset for rework); its serial is not reused",
}


def _verdict(report: TagReport, uid: bytes, lookup: UnitLookup | None) -> tuple[str, str]:
    """What the chip is (from its own answers), then what the database says about its UID."""
    unit = lookup(uid) if lookup is not None else None
    if unit is not None:
        report.unit = unit
        known = ", ".join(f"{k} {v}" for k, v in unit.items() if v is not None)
        if _looks_factory_fresh(report):
            says = _FRESH_BUT_KNOWN.get(unit.get("state") or "", f"state {unit.get('state')}")
            return FRESH, f"the chip holds factory keys; the database knows it ({known}): {says}"
        return TAGSMITH, known
    if report.originality == "invalid":
        return UNKNOWN, "originality signature does not verify: not a genuine NXP chip (or an emulator)"
    if report.originality is None:
        return UNKNOWN, "originality signature could not be read"
    if _looks_factory_fresh(report):
        return FRESH, "all key versions 00, no SDM, empty NDEF file"
    changed = {k: v for k, v in report.key_versions.items() if v}
    what = f"key versions {changed}" if changed else "NDEF content or SDM settings"
    if lookup is None:
        return UNKNOWN, f"personalised ({what}), but there is no batch database to say by whom"
    return FOREIGN, f"personalised ({what}) and not in the batch database"


def database_lookup(database: Path) -> UnitLookup | None:
    """A UID lookup in the batch database at ``database``; None when there is none yet."""
    if not database.exists():
        return None
    try:
        from tagsmith.batches.db import BatchStore
    except ImportError:  # the batches layer is not installed in this build
        return None

    def lookup(uid: bytes) -> dict[str, Any] | None:
        with BatchStore(database) as store:
            unit = store.unit_by_uid(uid)
            if unit is None:
                return None
            batch = store.batch(unit.batch_id)
            return {"product": batch.product_id, "batch": unit.batch_id, "serial": unit.serial, "state": unit.state}

    return lookup
