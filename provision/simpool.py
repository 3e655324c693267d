"""Simulated chips that outlive the process, as physical tags outlive a crashed station.

Each chip's non-volatile state is a JSON file in the pool directory (mode 0600: a simulated
chip holds its keys, like a real one). With ``persist_each_apdu`` the state is saved after
every APDU, so a station killed mid-tag leaves the chip exactly as far as it got.
"""

from __future__ import annotations

import json
import os
import random as _random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tagsmith.encoders.simulator import NvState, SimulatedNtag424

from .workspace import Workspace


def random_uid(rng: _random.Random) -> bytes:
    """A 7-byte NXP UID (manufacturer byte 04) from ``rng``."""
    return b"\x04" + bytes(rng.getrandbits(8) for _ in range(6))


def sim_pool(ws: Workspace) -> "SimChipPool":
    """Where simulated chips of a workspace live between commands."""
    return SimChipPool(ws.home / "sim-chips")


class SimChipPool:
    """A directory of simulated chips keyed by UID."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, uid: bytes) -> Path:
        return self.directory / f"{uid.hex().upper()}.json"

    def uids(self) -> list[bytes]:
        if not self.directory.is_dir():
            return []
        return [bytes.fromhex(p.stem) for p in sorted(self.directory.glob("*.json"))]

    def new_chip(self, rng: _random.Random) -> SimulatedNtag424:
        """A factory-fresh chip with a UID not yet in the pool, saved at once."""
        while True:
            uid = random_uid(rng)
            if not self.path(uid).exists():
                break
        chip = SimulatedNtag424(uid=uid)
        self.save(chip)
        return chip

    def load(self, uid: bytes) -> SimulatedNtag424:
        data = json.loads(self.path(uid).read_text())
        return SimulatedNtag424(state=NvState.from_dict(data))

    def save(self, chip: SimulatedNtag424) -> None:
        """Write the chip's state atomically (temp file + rename)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".chip-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(chip.snapshot().to_dict(), out)
            os.replace(tmp, self.path(chip.uid))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class PersistentChip:
    """A Connection to a pooled chip that saves its state after every APDU."""

    chip: SimulatedNtag424
    pool: SimChipPool

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            return self.chip.transceive(apdu)
        finally:
            self.pool.save(self.chip)
