"""The simulated chip's working state and the secure messaging every command family shares.

A :class:`ChipCore` is what a command handler works on: the stored state (:class:`NvState`),
the state of the current placement (:class:`Volatile`), the random source, and the EV2 secure
messaging of ``docs/reference/ntag424.md`` §6 (MAC and Full mode, CmdCtr) with the CommMode a
file's access rights grant (ref §4.1). Handlers are plain functions ``(chip, command) -> reply``;
the dispatch tables of :mod:`.chip` name them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple, Protocol

from tagsmith.encoders.apdu import SW

from . import files as F
from .files import FileSettings
from .signing import sign_uid
from .sm import Session
from .state import NvState
from .status import ChipStatus

RandomSource = Callable[[int], bytes]
Reply = tuple[bytes, int]


class Comm(Enum):
    """Communication mode of one exchange (ref §4.3, §6.4)."""

    PLAIN = "plain"
    MAC = "mac"
    FULL = "full"


#: FileOption bits 1..0 -> mode: 00 and 10 Plain, 01 MAC, 11 Full (ref §4.3).
MODE_OF_COMM = {F.COMM_PLAIN: Comm.PLAIN, 0x02: Comm.PLAIN, F.COMM_MAC: Comm.MAC, F.COMM_FULL: Comm.FULL}


class Level(Enum):
    """The selected level: the PICC (MF) or the NDEF application DF (ref §3.1)."""

    PICC = "picc"
    APP = "app"


class SdmRead(NamedTuple):
    """The mirrored image an unauthenticated read of the SDM file returned, and by which command type."""

    via: str  # "native" (ReadData) or "iso" (ISOReadBinary)
    image: bytes


@dataclass(frozen=True, slots=True)
class Command:
    """One well-formed command APDU as a handler sees it."""

    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None
    apdu_len: int
    previous_sdm_read: SdmRead | None  # what the APDU before this one mirrored, if it was an SDM read


class Continuation(Protocol):
    """The rest of a multi-frame exchange, waiting for its 90 AF frame (ref §2.2)."""

    def resume(self, chip: ChipCore, data: bytes) -> Reply: ...


Handler = Callable[["ChipCore", Command], Reply]


@dataclass
class Volatile:
    """What the chip forgets when it leaves the field; fresh on every power-up.

    ISO 14443 parameters are read from NVM at power-up and hold until the next one (ref §12).
    """

    random_id: bool
    strong_back_modulation: bool
    anticollision_uid: bytes
    level: Level = Level.PICC  # after activation the PICC level (MF) is selected (ref §3.1, §3.3)
    selected_file: int | None = None
    session: Session | None = None
    suspended: Session | None = None  # the session a DF select ended: NonFirst may still take up its TI (ref §3.3)
    pending: Continuation | None = None
    sdm_read: SdmRead | None = None
    delay_spent: list[int] = field(default_factory=lambda: [0] * 5)
    apdu_count: int = 0


class ChipCore:
    """Stored and volatile state of one simulated chip, and the helpers its commands share."""

    def __init__(self, nv: NvState, random: RandomSource, auth_delay_after: int, auth_delay_attempts: int,
                 df_select_ends_auth: bool = True) -> None:
        self.random = random
        self.df_select_ends_auth = df_select_ends_auth
        self.auth_delay_after = auth_delay_after
        self.auth_delay_attempts = auth_delay_attempts
        self.in_field = True
        self.apdu_total = 0
        self.load(nv)

    def load(self, nv: NvState) -> None:
        """Take ``nv`` as the stored state (its originality signature with it) and power up."""
        self.nv = nv
        self.signature = sign_uid(nv.uid)  # NXP programs it at production; Read_Sig reads it back
        self.power_up()

    def power_up(self) -> None:
        """Start a placement: volatile state from scratch.

        With Random ID the reader sees a fresh 4-byte UID (08 ...) at each activation (ref §12); it
        comes from the system, not from ``random``, so that transcripts replay unchanged.
        """
        nv = self.nv
        seen_uid = b"\x08" + os.urandom(3) if nv.random_id else nv.uid
        self.vol = Volatile(nv.random_id, nv.strong_back_modulation, seen_uid)

    def draw(self, n: int) -> bytes:
        """``n`` bytes from the random source (RndB, TI, PICCData padding)."""
        value = bytes(self.random(n))
        if len(value) != n:
            raise ValueError(f"random source returned {len(value)} bytes, {n} wanted")
        return value

    def file(self, file_no: int) -> FileSettings:
        """A file's settings, 91F0 when there is no such file."""
        settings = self.nv.settings.get(file_no)
        if settings is None:
            raise ChipStatus(SW.FILE_NOT_FOUND)
        return settings

    # --- secure messaging (ref §6)

    def access_mode(self, settings: FileSettings, rights: tuple[int, ...]) -> Comm | None:
        """CommMode granted by ``rights`` (ref §4.1): own key -> file mode; only E -> Plain."""
        session = self.vol.session
        if session is not None and session.key_no in rights:
            return MODE_OF_COMM[settings.comm_mode]
        if F.FREE in rights:
            return Comm.PLAIN
        return None

    def unwrap(self, ins: int, data: bytes, header_len: int, mode: Comm) -> tuple[bytes, bytes]:
        """Split a command into (header, plain command data), checking MAC / decrypting."""
        session = self.vol.session
        if session is None or mode is Comm.PLAIN:
            if session is not None:
                session.check_counter()
            if len(data) < header_len:
                raise ChipStatus(SW.LENGTH_ERROR)
            return data[:header_len], data[header_len:]
        if len(data) < header_len + 8:
            raise ChipStatus(SW.LENGTH_ERROR)
        body, mac = data[:-8], data[-8:]
        session.verify_command_mac(ins, body, mac)
        header, payload = body[:header_len], body[header_len:]
        if mode is Comm.FULL and payload:
            payload = session.decrypt_command(payload)
        return header, payload

    def wrap(self, data: bytes, mode: Comm, rc: int = 0x00) -> bytes:
        """Build the response data for an accepted command; moves CmdCtr when authenticated."""
        session = self.vol.session
        if session is None:
            return data
        session.advance()
        if mode is Comm.PLAIN:
            return data
        if mode is Comm.FULL:
            data = session.encrypt_response(data)
        return data + session.response_mac(rc, data)


def check_key_no(key_no: int) -> int:
    """A key number from a command: 919E when RFU bits are set, 9140 past key 4."""
    if key_no & 0xC0:
        raise ChipStatus(SW.PARAMETER_ERROR)
    if key_no > 4:
        raise ChipStatus(SW.NO_SUCH_KEY)
    return key_no
