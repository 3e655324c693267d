"""Simulated chips that outlive the process, as physical tags outlive a crashed station.

Each chip is a small journal file in the pool directory (mode 0600: a simulated chip holds its
keys, like a real one). A :class:`PersistentChip` appends the chip's non-volatile state after every
command that changed it, as the silicon commits its NVM before answering, so a station killed or
interrupted mid-tag leaves the chip exactly as far as it got: never behind the database.

A record is one ``write`` of ``length, CRC-32, JSON``: a process killed mid-command leaves either
the whole record or, at worst, a torn tail that fails its length or CRC and is ignored (the chip
keeps its last committed state, as an interrupted NVM write keeps the old value on silicon).
Appending costs one system call; a temp file and a rename per command cost a file creation each,
many times as much (docs/performance.md, ``bench/station.py --pool-tags``). A journal is rewritten to its last
record (temp file + rename) when a process first writes it and every ``COMPACT_AFTER`` records.
Nothing is fsynced: a simulated chip only has to outlive its process, and the page cache belongs to
the kernel. Temp files carry their writer's pid, so one left by a killed run is swept when the pool
is next opened, and a live writer's never.
"""

from __future__ import annotations

import json
import os
import random as _random
import struct
import zlib
from pathlib import Path

from tagsmith import StateError
from tagsmith.atomicfile import atomic_write
from tagsmith.encoders.connection import TagRemovedError
from tagsmith.encoders.simulator import NvState, SimulatedNtag424

from ..workspace import Workspace


def random_uid(rng: _random.Random) -> bytes:
    """A 7-byte NXP UID (manufacturer byte 04) from ``rng``."""
    return b"\x04" + bytes(rng.getrandbits(8) for _ in range(6))


def sim_pool(ws: Workspace) -> SimChipPool:
    """Where simulated chips of a workspace live between commands."""
    return SimChipPool(ws.home / "sim-chips")


TEMP_PREFIX = ".chip-"
SUFFIX = ".chip"
COMPACT_AFTER = 64  # records a journal may grow to before it is rewritten to its last one
_HEADER = struct.Struct(">II")  # payload length, CRC-32 of the payload


class SimChipPool:
    """A directory of simulated chips keyed by UID."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._journals: dict[bytes, list[int]] = {}  # uid -> [open append fd, records in the file]
        self.sweep_temp_files()

    def sweep_temp_files(self) -> None:
        """Remove temp files whose writer is gone (a run killed between write and rename)."""
        if not self.directory.is_dir():
            return
        for tmp in self.directory.glob(TEMP_PREFIX + "*"):
            pid = tmp.name[len(TEMP_PREFIX):].partition("-")[0]
            if not (pid.isdigit() and _alive(int(pid))):
                tmp.unlink(missing_ok=True)

    def path(self, uid: bytes) -> Path:
        return self.directory / f"{uid.hex().upper()}{SUFFIX}"

    def uids(self) -> list[bytes]:
        if not self.directory.is_dir():
            return []
        return [bytes.fromhex(p.stem) for p in sorted(self.directory.glob("*" + SUFFIX))]

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
        """The chip as its last whole record left it."""
        return SimulatedNtag424(state=NvState.from_dict(json.loads(_last_record(self.path(uid).read_bytes()))))

    def save(self, chip: SimulatedNtag424) -> None:
        """Commit the chip's whole state (a new chip's first record)."""
        self.write(chip.uid, chip.snapshot())

    def write(self, uid: bytes, nv: NvState) -> None:
        """Commit one chip's non-volatile state: one appended record (see the module's docstring)."""
        payload = json.dumps(nv.to_dict(), separators=(",", ":")).encode()
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        journal = self._journals.get(uid)
        if journal is None or journal[1] >= COMPACT_AFTER:
            self._rewrite(uid, record)
            return
        if os.write(journal[0], record) != len(record):  # a short write: start the file afresh
            self._rewrite(uid, record)
            return
        journal[1] += 1

    def _rewrite(self, uid: bytes, record: bytes) -> None:
        """Replace the chip's journal by one record (temp file + rename) and keep it open to append."""
        tmp = self.directory / f"{TEMP_PREFIX}{os.getpid()}-{uid.hex().upper()}"
        atomic_write(self.path(uid), record, temp=tmp, durable=False)
        old = self._journals.pop(uid, None)
        if old is not None:
            os.close(old[0])
        self._journals[uid] = [os.open(self.path(uid), os.O_WRONLY | os.O_APPEND), 1]

    def close(self) -> None:
        """Close the journals this pool keeps open (their records are already in the files)."""
        for fd, _ in self._journals.values():
            os.close(fd)
        self._journals.clear()

    def __del__(self) -> None:
        self.close()


def _last_record(data: bytes) -> bytes:
    """The payload of the last whole record of a journal; a torn tail is ignored."""
    last, offset = None, 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size: offset + _HEADER.size + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            break
        last, offset = payload, offset + _HEADER.size + length
    if last is None:
        raise StateError("a simulated chip's file holds no whole record (damaged: remove it from sim-chips)")
    return last


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PersistentChip:
    """A Connection to a pooled chip that saves its NVM after each command that changed it.

    Also after a tear, which may commit or roll back (the chip decides). A command cut short by
    anything else (Ctrl-C inside the simulator) saves nothing: the file keeps the last state the
    chip committed, as an interrupted NVM write keeps the old value on the silicon.
    """

    def __init__(self, chip: SimulatedNtag424, pool: SimChipPool) -> None:
        self.chip = chip
        self.pool = pool
        self._saved = chip.snapshot()
        if not pool.path(chip.uid).exists():
            pool.save(chip)

    def transceive(self, apdu: bytes) -> tuple[bytes, int]:
        try:
            reply = self.chip.transceive(apdu)
        except TagRemovedError:
            self._persist()
            raise
        self._persist()
        return reply

    def _persist(self) -> None:
        nv = self.chip.snapshot()
        if nv != self._saved:  # most commands (SELECT, reads, authentication) change nothing
            self.pool.write(self.chip.uid, nv)
            self._saved = nv
