"""Identify a tag without touching its keys: what ``tagsmith tag info`` reports.

Everything here is readable without authentication (GetVersion, Read_Sig, GetKeyVersion,
GetFileSettings, an ISO NDEF read as a phone does it). Nothing ever authenticates with a guessed
key: failed attempts slow a real chip down and count against it. The verdict combines the chip's
answers with the batch database, when there is one. The chip's secure messaging (AES or LRP) is
told the same way, never by authenticating: by the database (the unit's product) and by the SUN
URL (an LRP chip's PICC data is 48 hex characters, an AES chip's 32; docs/reference/lrp.md §6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tagsmith import ChipError
from tagsmith.encoders.connection import Connection
from tagsmith.encoders.ntag424.files import FileSettings
from tagsmith.encoders.ntag424.originality import verify_originality
from tagsmith.encoders.ntag424.session import NDEF_FILE_ID, Ntag424Session
from tagsmith.workspace import Workspace


class TagVerdict(StrEnum):
    """What a tag is, as ``tag info`` reports it."""

    FRESH = "factory-fresh"
    TAGSMITH = "personalised by tagsmith"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"


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
    verdict: TagVerdict = TagVerdict.UNKNOWN
    reason: str = ""
    unit: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # the chip's mode by source: "database" (the unit's product), "sun_url" (the PICC data's length)
    secure_messaging: dict[str, str] = field(default_factory=dict)

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
        key_version = _read(report, f"GetKeyVersion {key_no}", partial(session.get_key_version, key_no))
        if key_version is not None:
            report.key_versions[key_no] = key_version
    for file_no in FILES:
        settings = _read(report, f"GetFileSettings {file_no:02X}", partial(session.get_file_settings, file_no))
        report.file_settings[file_no] = _settings(settings) if settings else "not readable"
    report.ndef_url = _read(report, "NDEF read as a phone", lambda: _ndef_url(session))
    report.verdict, report.reason = _verdict(report, uid, lookup)
    _secure_messaging(report)
    return report


def _secure_messaging(report: TagReport) -> None:
    """The chip's mode from the database and from its SUN URL; a disagreement is noted."""
    if report.unit is not None and report.unit.get("secure_messaging"):
        report.secure_messaging["database"] = report.unit["secure_messaging"]
    if report.ndef_url is not None:
        lengths = {len(v) for _, v in parse_qsl(urlsplit(report.ndef_url).query) if _is_hex(v)}
        if 48 in lengths:
            report.secure_messaging["sun_url"] = "lrp"
        elif 32 in lengths:
            report.secure_messaging["sun_url"] = "aes"
    if len(set(report.secure_messaging.values())) > 1:
        report.notes.append("secure messaging: the database and the SUN URL disagree")


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in value)


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


def _verdict(report: TagReport, uid: bytes, lookup: UnitLookup | None) -> tuple[TagVerdict, str]:
    """What the chip is (from its own answers), then what the database says about its UID."""
    unit = lookup(uid) if lookup is not None else None
    if unit is not None:
        report.unit = unit
        known = ", ".join(f"{k} {v}" for k, v in unit.items() if v is not None and k != "secure_messaging")
        if _looks_factory_fresh(report):
            says = _FRESH_BUT_KNOWN.get(unit.get("state") or "", f"state {unit.get('state')}")
            return TagVerdict.FRESH, f"the chip holds factory keys; the database knows it ({known}): {says}"
        return TagVerdict.TAGSMITH, known
    if report.originality == "invalid":
        return TagVerdict.UNKNOWN, "originality signature does not verify: not a genuine NXP chip (or an emulator)"
    if report.originality is None:
        return TagVerdict.UNKNOWN, "originality signature could not be read"
    if _looks_factory_fresh(report):
        return TagVerdict.FRESH, "all key versions 00, no SDM, empty NDEF file"
    changed = {k: v for k, v in report.key_versions.items() if v}
    what = f"key versions {changed}" if changed else "NDEF content or SDM settings"
    if lookup is None:
        return TagVerdict.UNKNOWN, f"personalised ({what}), but there is no batch database to say by whom"
    return TagVerdict.FOREIGN, f"personalised ({what}) and not in the batch database"


def database_lookup(workspace: Workspace) -> UnitLookup | None:
    """A UID lookup in the workspace's batch database; None when there is none yet."""
    if not workspace.database.exists():
        return None
    try:
        from tagsmith.batches.store import open_store
    except ImportError:  # the batches layer is not installed in this build
        return None

    def lookup(uid: bytes) -> dict[str, Any] | None:
        with open_store(workspace, create=False) as store:
            unit = store.unit_by_uid(uid)
            if unit is None:
                return None
            batch = store.batch(unit.batch_id)
            return {"product": batch.product_id, "batch": unit.batch_id, "serial": unit.serial, "state": unit.state,
                    "secure_messaging": store.batch_product(unit.batch_id).secure_messaging}

    return lookup
