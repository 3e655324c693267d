"""What the batch store hands out: frozen records, free of SQL so a PostgreSQL store can reuse them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .qarecords import QaStatus


class UnitState(StrEnum):
    """A unit's life: a serial allocated to a chip, written, read back, and possibly voided (stored as text)."""

    ALLOCATED = "allocated"
    ENCODING = "encoding"
    ENCODED = "encoded"
    VERIFIED = "verified"
    VOIDED = "voided"


class BatchState(StrEnum):
    """A batch allocates serials while open; closing it stops allocation and encoding."""

    OPEN = "open"
    CLOSED = "closed"


UNIT_STATES = tuple(UnitState)
# Plain strings: the store formats IN_PROGRESS into its SQL text, where a member's repr would not do.
IN_PROGRESS = (UnitState.ALLOCATED.value, UnitState.ENCODING.value)
DONE = (UnitState.ENCODED, UnitState.VERIFIED)


@dataclass(frozen=True)
class ProductRecord:
    id: str
    name: str
    model: str
    gtin: str
    current_sha256: str
    versions: int
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Batch:
    id: str
    product_id: str
    product_sha256: str
    lot: str | None
    line: str | None
    quantity: int
    allocated: int
    state: str  # a BatchState value
    created_at: str
    closed_at: str | None

    @property
    def is_open(self) -> bool:
        return self.state == BatchState.OPEN


@dataclass(frozen=True)
class Unit:
    """One chip's record. ``key_versions`` maps key slot -> version written to the chip."""

    id: int
    batch_id: str
    serial: str
    uid: bytes
    state: UnitState
    station: str | None
    key_versions: dict[int, int] = field(default_factory=dict, hash=False)
    read_counter: int | None = None  # SDM read counter when encoding finished
    verified_counter: int | None = None  # the highest read counter seen in a verified SUN (station, tag verify, QA)
    qa_status: QaStatus | None = None
    allocated_at: str = ""
    encoded_at: str | None = None
    verified_at: str | None = None
    voided_at: str | None = None
    void_reason: str | None = None
    voided_by: str | None = None

    @property
    def last_counter(self) -> int:
        """The unit's replay floor: the highest SDM read counter recorded for the chip; a genuine tap must exceed it."""
        return max(self.read_counter or 0, self.verified_counter or 0)

    def to_dict(self) -> dict[str, Any]:
        """The unit as ``batch units`` and ``unit show`` print it (``floor``: what a tap must exceed)."""
        return {"serial": self.serial, "uid": self.uid.hex().upper(), "batch": self.batch_id, "state": self.state,
                "station": self.station, "key_versions": {str(k): v for k, v in sorted(self.key_versions.items())},
                "encode_counter": self.read_counter, "floor": self.last_counter if self.state in DONE else None,
                "qa": self.qa_status, "allocated_at": self.allocated_at, "encoded_at": self.encoded_at,
                "verified_at": self.verified_at, "voided_at": self.voided_at, "void_reason": self.void_reason,
                "voided_by": self.voided_by}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Unit:
        versions = json.loads(row["key_versions"]) if row["key_versions"] else {}
        return cls(
            id=row["id"], batch_id=row["batch_id"], serial=row["serial"], uid=bytes(row["uid"]),
            state=UnitState(row["state"]), station=row["station"],
            key_versions={int(k): int(v) for k, v in versions.items()},
            read_counter=row["read_counter"], verified_counter=row["verified_counter"],
            qa_status=QaStatus(row["qa_status"]) if row["qa_status"] else None,
            allocated_at=row["allocated_at"], encoded_at=row["encoded_at"],
            verified_at=row["verified_at"], voided_at=row["voided_at"], void_reason=row["void_reason"],
            voided_by=row.get("voided_by"))


@dataclass(frozen=True)
class UnitEvent:
    unit_id: int
    event: str  # allocated, encoding_started, step, encoded, verified, qa, voided, label_printed, label_proofed, tap
    detail: dict[str, Any] | None
    station: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "detail": self.detail, "station": self.station, "at": self.at}


@dataclass(frozen=True)
class AuthFailure:
    """A chip that refused an authentication at a station: it is never authenticated again."""

    uid: bytes
    key_no: int
    status: str  # the chip's answer, e.g. "91AE"
    station: str | None
    at: str
    cleared_at: str | None = None  # an engineer let stations try it once more
    clear_reason: str | None = None
    serial: str | None = None  # the unit this UID is, when listed

    def describe(self) -> str:
        """One line for the operator: why this chip is not authenticated again."""
        return (f"its chip refused an authentication (status {self.status}) at {self.station or 'a station'} "
                f"on {self.at[:10]}: never tried again (an engineer may clear it: tagsmith tag refusals)")

    def to_dict(self) -> dict[str, Any]:
        return {"uid": self.uid.hex().upper(), "serial": self.serial, "key_no": self.key_no, "status": self.status,
                "station": self.station, "at": self.at, "cleared_at": self.cleared_at,
                "clear_reason": self.clear_reason}


@dataclass(frozen=True)
class BatchProgress:
    batch_id: str
    quantity: int
    minted: int
    allocated: int
    by_state: dict[str, int]

    @property
    def done(self) -> int:
        return sum(self.by_state.get(s, 0) for s in DONE)

    @property
    def remaining(self) -> int:
        """Serials not yet allocated (voided units keep theirs burnt)."""
        return self.quantity - self.allocated

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch_id, "quantity": self.quantity, "minted": self.minted,
                "allocated": self.allocated, "remaining": self.remaining, "done": self.done,
                "by_state": {s: self.by_state.get(s, 0) for s in UnitState}}


@dataclass(frozen=True)
class ManifestRecord:
    id: str
    batch_id: str
    kind: str  # export | merge
    path: str
    format: str  # jsonl | csv
    sha256: str
    units: int
    created_at: str
    uploaded_at: str | None = None
    upload_url: str | None = None
    receipt: dict[str, Any] | None = None
    superseded_by: str | None = None  # a later manifest written to the same path replaced this file
