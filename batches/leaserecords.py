"""Serial leases as the batch store hands them out: a block of a batch's serials held by one station.

A station that leases a block encodes from it while the line's database is unreachable and pushes
what it did when the database is back (docs/deployment.md, "Leases"). Frozen and free of SQL, as
records.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class LeaseState(StrEnum):
    """Active while the station may encode from it; returned by the station, or revoked by an engineer.

    A station's own journal also marks a lease it stopped allocating from at its expiry (``expired``)
    until the line's database takes it back.
    """

    ACTIVE = "active"
    RETURNED = "returned"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Lease:
    """One lease: its block's size, its expiry, and what became of its serials so far.

    ``used`` is what the station reported at its last sync; ``synced`` counts the units the
    database holds on the lease's serials; ``unused`` the serials still held for it without a unit.
    """

    id: int
    batch_id: str
    station: str
    size: int
    leased_at: str
    expires_at: str
    state: LeaseState
    closed_at: str | None = None
    reason: str | None = None
    by: str | None = None
    used: int = 0
    synced_event: int = 0
    synced_at: str | None = None
    synced: int = 0
    unused: int = 0
    conflicts: int = 0

    @property
    def is_active(self) -> bool:
        return self.state == LeaseState.ACTIVE

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Lease:
        fields = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "state": LeaseState(row["state"])})

    def to_dict(self) -> dict[str, Any]:
        return {"lease": self.id, "batch": self.batch_id, "station": self.station, "leased": self.size,
                "used": self.used, "synced": self.synced, "unused": self.unused, "conflicts": self.conflicts,
                "leased_at": self.leased_at, "expires_at": self.expires_at, "state": self.state,
                "closed_at": self.closed_at, "reason": self.reason, "by": self.by, "synced_at": self.synced_at}


@dataclass(frozen=True)
class LeaseConflict:
    """A unit a station pushed that the database refused: never merged, reported for an engineer."""

    lease_id: int
    batch_id: str
    station: str
    serial: str
    uid: bytes
    reason: str
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {"lease": self.lease_id, "batch": self.batch_id, "station": self.station, "serial": self.serial,
                "uid": self.uid.hex().upper(), "reason": self.reason, "at": self.at}


@dataclass(frozen=True)
class LeaseSync:
    """What one push of a station's journal did: units taken in (new or moved forward), conflicts refused."""

    lease: Lease
    accepted: int
    conflicts: tuple[LeaseConflict, ...]
