"""Decide what to do with a tag from what is known, before anything that could fail an authentication.

Key 0 is changed last (docs/reference/ntag424.md §14.1), so its version, readable without authentication,
splits every tag of ours into: untouched, interrupted before key 0, or finished. A UID the
database has never seen needs no probe: it is factory-fresh or foreign, and the one
authentication with the factory key tells which (a foreign chip is then remembered and never
tried again). At most one authentication follows, with the one key the facts name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tagsmith.batches.records import DONE, UnitState

FACTORY_VERSION = 0x00


class Verdict(StrEnum):
    FRESH = "fresh"            # not ours yet: the factory key authenticates, then a serial and personalise
    RESUME = "resume"          # ours, key 0 still factory: authenticate with it and finish
    VERIFY = "verify"          # ours, key 0 changed: everything written, verify as a phone
    COMPLETE = "complete"      # ours and already recorded encoded: verify only
    FOREIGN = "foreign"        # refused an authentication before: set aside, never authenticate again
    REFUSED = "refused"        # ours but not for this run (other batch, voided, unknown key version)


@dataclass(frozen=True)
class KnownUnit:
    """What the database says about a UID (None when it has never seen it)."""

    batch_id: str
    serial: str
    state: UnitState
    key_version: int


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str

    @property
    def writes(self) -> bool:
        return self.verdict in (Verdict.FRESH, Verdict.RESUME)


def decide(*, key0_version: int | None, unit: KnownUnit | None, batch_id: str, target_version: int) -> Decision:
    """Classify a tag from its database record (if any) and, for a known UID, its key 0 version.

    A UID the database has never seen needs no version (pass None): it is tried with the
    factory key, which either authenticates (fresh) or proves the chip foreign.
    """
    if unit is None:
        return Decision(Verdict.FRESH, "factory-fresh")
    if key0_version is None:
        raise ValueError("a tag the database knows is decided by its key 0 version")
    if unit.state == UnitState.VOIDED:
        if key0_version == FACTORY_VERSION:
            return Decision(Verdict.FRESH, f"reset after {unit.serial} was voided: encoding under a new serial")
        return Decision(Verdict.REFUSED, f"serial {unit.serial} was voided; reset the tag before reuse")
    if unit.batch_id != batch_id:
        return Decision(Verdict.REFUSED, f"tag belongs to batch {unit.batch_id} (serial {unit.serial})")
    if key0_version == FACTORY_VERSION:
        if unit.state in DONE:
            return Decision(Verdict.REFUSED, f"recorded encoded as {unit.serial} but key 0 is factory: quarantine")
        return Decision(Verdict.RESUME, f"interrupted {unit.serial}: resuming")
    if key0_version == unit.key_version:
        if unit.state in DONE:
            return Decision(Verdict.COMPLETE, f"already encoded as {unit.serial}")
        return Decision(Verdict.VERIFY, f"{unit.serial} keyed before the tear: verifying")
    return Decision(Verdict.REFUSED,
                    f"{unit.serial}: key 0 version {key0_version:02X} is not one of ours (expected {target_version:02X})")
